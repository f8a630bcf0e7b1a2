import type { SessionClient } from './types.js'

/** A debounced call with use-debounce's controls: `send()` (re)arms it, `flush()` runs it now if armed, `cancel()` drops it. */
export interface DebouncedSend {
  (): void
  flush(): void
  cancel(): void
}

/** Where the online state comes from: TanStack Query's `onlineManager` has this shape. */
export interface OnlineSource {
  isOnline(): boolean
  subscribe(listener: (online: boolean) => void): () => void
}

export interface ConnectOptions {
  /** Quiet time after the last local write before the patch is sent; default 800 ms. */
  debounceMs?: number
  /** During continuous writing, a patch is sent at least this often; default 5000 ms. */
  maxWaitMs?: number
  /**
   * The debounced `client.sync()` to use instead of the built-in one (`debounceMs` and
   * `maxWaitMs` are then its own): the React provider hands in use-debounce's.
   */
  send?: DebouncedSend
  /** The online state; default the browser's (`navigator.onLine`, `online`/`offline` events). */
  online?: OnlineSource
  /**
   * How the session is fetched again when the page is shown again or the network comes back;
   * default `client.refresh()`, tried up to three times. The React provider refetches its query.
   */
  refresh?: () => void
  /** Asks the browser to confirm leaving the page while changes are not yet on the server. */
  warnOnUnsavedChanges?: boolean
}

/**
 * Wires a client to the page, the one way it is done (the React provider calls it too): starts
 * it, sends one patch per pause in writing (debounce with a maximum wait), sends what is
 * unconfirmed with `keepalive` when the page hides, fetches the session again when the page shows
 * again or the network comes back (so another tab's or device's changes appear), follows the
 * online state, and optionally asks before the page is left with unsaved changes. Returns the
 * function that undoes it all, sends what the debounce was holding back, and stops the client.
 *
 * @example
 * const client = createSessionClient({ endpoint: '/api/session' })
 * const disconnect = connectToPage(client, { debounceMs: 500 })
 * input.addEventListener('input', () => client.set('email', input.value))
 * // when the client is no longer needed: await disconnect()
 */
export function connectToPage(client: SessionClient, options: ConnectOptions = {}): () => Promise<void> {
  let connected = true
  const disconnect = wirePage(client, {
    send: options.send ?? debounce(() => client.sync(), options.debounceMs ?? 800, options.maxWaitMs ?? 5000),
    online: options.online ?? browserOnline(),
    refresh: options.refresh ?? (() => void refreshWithRetries(client, () => connected)),
    warnOnUnsavedChanges: options.warnOnUnsavedChanges ?? false,
  })
  return () => {
    connected = false
    return disconnect()
  }
}

/**
 * {@link connectToPage} with every part given: what the React provider calls, so that its bundle
 * has no second debounce, online source or refresh loop beside the ones it hands in.
 */
export function wirePage(
  client: SessionClient,
  { send, online, refresh, warnOnUnsavedChanges }: Required<Pick<ConnectOptions, 'send' | 'online' | 'refresh' | 'warnOnUnsavedChanges'>>,
): () => Promise<void> {
  const page = typeof window === 'undefined' ? undefined : window
  const undo: Array<() => void> = []
  const listen = (target: EventTarget, type: string, listener: () => void, capture = false) => {
    target.addEventListener(type, listener, capture)
    undo.push(() => target.removeEventListener(type, listener, capture))
  }

  undo.push(client.onLocalWrite(send))
  client.setOnline(online.isOnline())
  undo.push(
    online.subscribe((isOnline) => {
      client.setOnline(isOnline)
      if (isOnline) refresh()
    }),
  )
  if (page) {
    // The tab may never come back: write the local copy now and send what is unconfirmed with keepalive.
    const onHide = () => {
      send.cancel()
      client.sendOnHide()
    }
    // Heard at the window while it captures: fired at the document (as browsers do) or at the
    // window (where TanStack Query listens), it is handled once.
    listen(page, 'visibilitychange', () => (document.visibilityState === 'hidden' ? onHide() : refresh()), true)
    listen(page, 'pagehide', onHide)
    if (warnOnUnsavedChanges) undo.push(askBeforeLeavingUnsaved(client, page))
  }
  void client.start()
  return async () => {
    for (const step of undo.splice(0)) step()
    send.flush()
    await client.stop()
  }
}

/** `call` once `waitMs` passed without another call, and at least every `maxWaitMs` while calls go on. */
function debounce(call: () => void, waitMs: number, maxWaitMs: number): DebouncedSend {
  let timer: ReturnType<typeof setTimeout> | undefined
  /** When the first call not yet run was made. */
  let firstAt: number | undefined
  const cancel = () => {
    clearTimeout(timer)
    timer = undefined
    firstAt = undefined
  }
  const flush = () => {
    if (timer === undefined) return
    cancel()
    call()
  }
  return Object.assign(
    () => {
      const now = Date.now()
      firstAt ??= now
      clearTimeout(timer)
      timer = setTimeout(flush, Math.max(0, Math.min(waitMs, firstAt + maxWaitMs - now)))
    },
    { flush, cancel },
  )
}

/** The browser's online state; always online where there is no window. */
function browserOnline(): OnlineSource {
  return {
    isOnline: () => (typeof navigator === 'undefined' ? true : navigator.onLine),
    subscribe(listener) {
      if (typeof window === 'undefined') return () => {}
      const onOnline = () => listener(true)
      const onOffline = () => listener(false)
      window.addEventListener('online', onOnline)
      window.addEventListener('offline', onOffline)
      return () => {
        window.removeEventListener('online', onOnline)
        window.removeEventListener('offline', onOffline)
      }
    },
  }
}

/** `client.refresh()`, tried again twice after a failure (1 s, then 2 s later) while still connected; the status shows the last error. */
async function refreshWithRetries(client: SessionClient, connected: () => boolean): Promise<void> {
  for (let attempt = 0; connected(); attempt++) {
    try {
      await client.refresh()
      return
    } catch {
      if (attempt === 2) return
      await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** attempt))
    }
  }
}

/** A `beforeunload` confirmation while the client is dirty; listening only then, since the listener can keep the page out of the back/forward cache. */
export function askBeforeLeavingUnsaved(client: SessionClient, page: Window): () => void {
  const onBeforeUnload = (event: BeforeUnloadEvent) => {
    event.preventDefault()
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- browsers before Chrome 119 show the prompt only when it is set
    event.returnValue = ''
  }
  let listening = false
  const update = () => {
    const dirty = client.getStatus().isDirty
    if (dirty && !listening) page.addEventListener('beforeunload', onBeforeUnload)
    if (!dirty && listening) page.removeEventListener('beforeunload', onBeforeUnload)
    listening = dirty
  }
  update()
  const unsubscribe = client.subscribeStatus(update)
  return () => {
    unsubscribe()
    page.removeEventListener('beforeunload', onBeforeUnload)
  }
}
