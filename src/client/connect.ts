import type { SessionClient } from './types.js'

export interface ConnectOptions {
  /** Quiet time after the last local write before the patch is sent; default 800 ms. */
  debounceMs?: number
  /** During continuous writing, a patch is sent at least this often; default 5000 ms. */
  maxWaitMs?: number
}

/**
 * Wires a client to the page without React, as `SessionProvider` does: starts it, sends one
 * patch per pause in writing (debounce with a maximum wait), sends what is unconfirmed with
 * `keepalive` when the page hides, fetches the session again when the page shows again or the
 * network comes back (so another tab's or device's changes appear), and follows the browser's
 * online state. Returns the function
 * that undoes it all, sends what a debounce was holding back, and stops the client.
 *
 * @example
 * const client = createSessionClient({ endpoint: '/api/session' })
 * const disconnect = connectToPage(client, { debounceMs: 500 })
 * input.addEventListener('input', () => client.set('email', input.value))
 * // when the client is no longer needed: await disconnect()
 */
export function connectToPage(client: SessionClient, options: ConnectOptions = {}): () => Promise<void> {
  const debounceMs = options.debounceMs ?? 800
  const maxWaitMs = options.maxWaitMs ?? 5000
  let timer: ReturnType<typeof setTimeout> | undefined
  /** When the first write not yet sent was made. */
  let firstWriteAt: number | undefined
  const cancel = () => {
    clearTimeout(timer)
    timer = undefined
    firstWriteAt = undefined
  }
  const syncNow = () => {
    cancel()
    client.sync()
  }
  const offLocalWrite = client.onLocalWrite(() => {
    const now = Date.now()
    firstWriteAt ??= now
    clearTimeout(timer)
    timer = setTimeout(syncNow, Math.max(0, Math.min(debounceMs, firstWriteAt + maxWaitMs - now)))
  })
  const onHide = () => {
    cancel()
    client.sendOnHide()
  }
  const refresh = () => void client.refresh().catch(() => {}) // the status holds the error
  const onVisibility = () => (document.visibilityState === 'hidden' ? onHide() : refresh())
  const onOnline = () => {
    client.setOnline(true)
    refresh()
  }
  const onOffline = () => client.setOnline(false)
  const page = typeof window === 'undefined' ? undefined : window
  if (page) {
    client.setOnline(navigator.onLine)
    document.addEventListener('visibilitychange', onVisibility)
    page.addEventListener('pagehide', onHide)
    page.addEventListener('online', onOnline)
    page.addEventListener('offline', onOffline)
  }
  void client.start()
  return async () => {
    offLocalWrite()
    if (page) {
      document.removeEventListener('visibilitychange', onVisibility)
      page.removeEventListener('pagehide', onHide)
      page.removeEventListener('online', onOnline)
      page.removeEventListener('offline', onOffline)
    }
    if (timer !== undefined) syncNow()
    await client.stop()
  }
}
