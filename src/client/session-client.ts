import { DEFAULT_BASE, type JsonValue, type SessionSnapshot, type Variables } from '../shared/protocol.js'
import { jsonValueProblem, keyProblem } from '../shared/rules.js'
import { createCacheWriter, indexedDbStorage, memoryStorage, readRecord, CACHE_FORMAT, type CacheStorage } from './cache.js'
import { fromPatchBody, toPatchBody, type Change, type Changes, type Outbox } from './changes.js'
import { SessionError, SessionValueError } from './errors.js'
import { KeyedListeners, Listeners } from './listeners.js'
import { sameMeta, type SessionMeta } from './meta.js'
import { randomId, resolveSessionId } from './session-id.js'
import { createTransport, type HeadersOption } from './transport.js'
import { jsonEqual, toStoredValue } from './values.js'

export interface SessionClientOptions {
  /** Where the session endpoints are mounted; default `/api/session`. */
  endpoint?: string
  /** Omit it to use the id this browser remembers for `endpoint`, or a new one. */
  sessionId?: string
  /** Default: the global `fetch`, looked up at each request. */
  fetch?: typeof fetch
  /** Sent with every request; a function is called per request (fresh tokens). */
  headers?: HeadersOption
  /** Where the local copy lives; default IndexedDB (falls back to memory when it fails). */
  storage?: CacheStorage
  /** A request without an answer in this time fails as retryable; default 15 s. */
  requestTimeoutMs?: number
  /** `flush()` rejects after this long without confirmation; default 30 s. */
  flushTimeoutMs?: number
  /** Backoff between retries: `baseMs · 2^(n-1)`, at most `maxMs`, with jitter; default 500 ms / 30 s. */
  retry?: { baseMs?: number; maxMs?: number }
}

/** A session's variables on this page: read synchronously, written optimistically, synced in patches. */
export interface SessionClient {
  readonly sessionId: string
  readonly endpoint: string
  /** The variable's current value (local changes included), or undefined. */
  get<T = JsonValue>(key: string): T | undefined
  /** Sets a variable now; the server hears of it at the next `sync()`. Throws {@link SessionValueError} for non-JSON values. */
  set(key: string, value: unknown): void
  /** Removes a variable now; the server hears of it at the next `sync()`. */
  delete(key: string): void
  /** All variables; the same object until one of them changes. */
  getSnapshot(): Readonly<Variables>
  /** Sync status; the same object until some field changes. */
  getMeta(): SessionMeta
  /** Calls `listener` after any variable changes. Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
  /** Calls `listener` only when `key`'s value changes. Returns the unsubscribe function. */
  subscribe(key: string, listener: () => void): () => void
  subscribeMeta(listener: () => void): () => void
  /** Calls `listener` after each local `set`/`delete`: where a debounce schedules `sync()`. */
  onLocalWrite(listener: () => void): () => void
  /** Reads the local copy (once) and resends what an earlier page left unconfirmed. */
  start(): Promise<void>
  /** Stops timers and writes the local copy now; `start()` resumes. */
  stop(): Promise<void>
  /** Fetches the server's snapshot and rebases local changes on it. Null when the server has none. */
  refresh(): Promise<SessionSnapshot | null>
  /** Sends pending changes now, or as soon as the request in flight is answered. */
  sync(): void
  /** Resolves when every change made before the call is confirmed; rejects with a {@link SessionError} when it cannot be. */
  flush(options?: { timeoutMs?: number }): Promise<void>
  /** Flushes, then runs a server step on the stored variables; resolves with its output. */
  run<Output = JsonValue>(step: string, input?: JsonValue): Promise<Output>
  /** Tell the client whether the network is reachable (the React provider wires this). */
  setOnline(online: boolean): void
  /** Writes the local copy now (call it when the page hides). */
  persist(): Promise<void>
}

interface InflightPatch {
  outbox: Outbox
  changes: Changes
  /** Local order of sent patches, across client ids: what flush barriers count in. */
  ticket: number
}

interface FlushWaiter {
  barrier: number
  resolve: () => void
  reject: (error: SessionError) => void
  timer: ReturnType<typeof setTimeout>
}

/**
 * Creates the framework-free session client. The React provider makes one for you.
 *
 * @example
 * const client = createSessionClient({ endpoint: '/api/session' })
 * await client.start()
 * client.set('email', 'a@b.c')   // visible at once: client.get('email') === 'a@b.c'
 * await client.flush()           // on the server now
 */
export function createSessionClient(options: SessionClientOptions = {}): SessionClient {
  const endpoint = (options.endpoint ?? DEFAULT_BASE).replace(/\/+$/, '')
  const sessionId = resolveSessionId(endpoint, options.sessionId)
  const clientId = `c-${randomId()}`
  const transport = createTransport({ endpoint, headers: options.headers, fetch: options.fetch, timeoutMs: options.requestTimeoutMs ?? 15_000 })
  const flushTimeoutMs = options.flushTimeoutMs ?? 30_000
  const retryBaseMs = options.retry?.baseMs ?? 500
  const retryMaxMs = options.retry?.maxMs ?? 30_000
  const cacheKey = `${endpoint}|${sessionId}`

  const fallbackStorage = memoryStorage()
  let storage: CacheStorage = options.storage ?? indexedDbStorage()
  let base: SessionSnapshot | null = null
  let rejected: Changes = new Map()
  let inflight: InflightPatch | null = null
  let pending: Changes = new Map()
  const values = new Map<string, JsonValue>()
  let variables: Readonly<Variables> | null = null

  let tickets = 0
  let ackedTicket = 0
  let nextSeq = 1
  let requestInFlight = false
  let syncRequested = false
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let attempt = 0
  let waiters: FlushWaiter[] = []
  let started: Promise<void> | undefined
  let hydrated = false
  let running = true
  let online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true
  let persistent = true
  let lastSyncedAt: number | null = null
  let error: SessionError | null = null

  const keyListeners = new KeyedListeners()
  const metaListeners = new Listeners()
  const writeListeners = new Listeners()
  let meta = computeMeta()

  const writer = createCacheWriter(
    { get: (key) => storage.get(key), set: (key, value) => storage.set(key, value), del: (key) => storage.del(key) },
    cacheKey,
    () => ({ format: CACHE_FORMAT, base, inflight: inflight?.outbox ?? null, pending: toPatchBody(pending) }),
    (ok) => {
      persistent = ok && storage !== fallbackStorage
      updateMeta()
    },
  )

  function computeMeta(): SessionMeta {
    const pendingKeys = [...new Set([...(inflight?.changes.keys() ?? []), ...pending.keys()])]
    return {
      isDirty: pendingKeys.length > 0,
      isSyncing: requestInFlight,
      lastSyncedAt,
      pendingKeys,
      error,
      isOnline: online,
      isPersistent: persistent,
      isHydrated: hydrated,
      version: base?.version ?? 0,
    }
  }

  function updateMeta(): void {
    const next = computeMeta()
    if (sameMeta(meta, next)) return
    meta = next
    metaListeners.notify()
  }

  function baseValue(key: string): JsonValue | undefined {
    return base && Object.hasOwn(base.variables, key) ? base.variables[key] : undefined
  }

  /** The visible value of `key`: pending ⊕ inflight ⊕ rejected ⊕ base, newest layer first. */
  function resolve(key: string): JsonValue | undefined {
    const change: Change | undefined = pending.get(key) ?? inflight?.changes.get(key) ?? rejected.get(key)
    if (change) return 'deleted' in change ? undefined : change.value
    return baseValue(key)
  }

  /** Recomputes the view for `keys`; notifies only keys whose value really changed. */
  function refreshKeys(keys: Iterable<string>): void {
    const changed: string[] = []
    for (const key of keys) {
      const next = resolve(key)
      const had = values.has(key)
      if (next === undefined) {
        if (had) changed.push(key)
        values.delete(key)
      } else if (!had || !jsonEqual(values.get(key), next)) {
        // Equal values keep their old identity, so an ack of our own write re-renders nothing.
        values.set(key, next)
        changed.push(key)
      }
    }
    if (changed.length === 0) return
    variables = null
    keyListeners.notify(changed)
  }

  /** Takes `snapshot` as the new base unless it is older than the one we have (or `replace`). */
  function applyBase(snapshot: SessionSnapshot, alsoRefresh: Iterable<string> = [], replace = false): void {
    const keys = new Set(alsoRefresh)
    if (replace || !base || snapshot.version >= base.version) {
      for (const key of Object.keys(base?.variables ?? {})) keys.add(key)
      for (const key of Object.keys(snapshot.variables)) keys.add(key)
      base = snapshot
      writer.schedule()
    }
    refreshKeys(keys)
  }

  function write(key: string, change: Change): void {
    // A change back to what the server already has (or is being sent) is no change at all.
    const below = inflight?.changes.get(key) ?? rejected.get(key)
    const confirmed = below ? ('deleted' in below ? undefined : below.value) : baseValue(key)
    const same = 'deleted' in change ? confirmed === undefined : jsonEqual(confirmed, change.value)
    if (same) pending.delete(key)
    else pending.set(key, change)
    refreshKeys([key])
    writer.schedule()
    updateMeta()
    writeListeners.notify()
  }

  function send(): void {
    if (!running || requestInFlight || retryTimer !== undefined || !online) return
    if (!hydrated) {
      syncRequested = true
      void start()
      return
    }
    if (!inflight) {
      if (pending.size === 0) return
      inflight = { outbox: { clientId, seq: nextSeq++, ...toPatchBody(pending) }, changes: pending, ticket: ++tickets }
      pending = new Map()
    }
    const sent = inflight
    syncRequested = false
    requestInFlight = true
    updateMeta()
    void (async () => {
      let snapshot: SessionSnapshot
      try {
        // The outbox is on disk before the request leaves: a reload resends it with the same seq.
        writer.schedule()
        await writer.flush()
        snapshot = await transport.patch(sessionId, sent.outbox)
      } catch (failure) {
        requestInFlight = false
        onSendFailure(sent, asSessionError(failure))
        return
      }
      requestInFlight = false
      onAck(sent, snapshot)
    })()
  }

  function onAck(sent: InflightPatch, snapshot: SessionSnapshot): void {
    if (inflight === sent) inflight = null
    for (const key of sent.changes.keys()) rejected.delete(key)
    ackedTicket = Math.max(ackedTicket, sent.ticket)
    attempt = 0
    error = null
    lastSyncedAt = Date.now()
    applyBase(snapshot, sent.changes.keys())
    writer.schedule()
    settleWaiters()
    updateMeta()
    if (pending.size > 0 && (syncRequested || waiters.length > 0)) send()
  }

  function onSendFailure(sent: InflightPatch, failure: SessionError): void {
    error = failure
    if (failure.retryable) {
      attempt++
      const delay = Math.min(retryMaxMs, retryBaseMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2)
      retryTimer = setTimeout(() => {
        retryTimer = undefined
        send()
      }, delay)
      updateMeta()
      return
    }
    // The server refused these changes for good: they stay visible, are not resent, and do not
    // block the changes made after them.
    if (inflight === sent) inflight = null
    for (const [key, change] of sent.changes) rejected.set(key, change)
    ackedTicket = Math.max(ackedTicket, sent.ticket)
    attempt = 0
    for (const waiter of waiters.filter((w) => w.barrier >= sent.ticket)) settle(waiter, failure)
    writer.schedule()
    updateMeta()
    if (pending.size > 0 && (syncRequested || waiters.length > 0)) send()
  }

  function settle(waiter: FlushWaiter, failure?: SessionError): void {
    clearTimeout(waiter.timer)
    waiters = waiters.filter((w) => w !== waiter)
    if (failure) waiter.reject(failure)
    else waiter.resolve()
  }

  function settleWaiters(): void {
    for (const waiter of waiters.filter((w) => w.barrier <= ackedTicket)) settle(waiter)
  }

  async function start(): Promise<void> {
    running = true
    started ??= (async () => {
      let cached
      try {
        cached = readRecord(await storage.get(cacheKey))
      } catch {
        // IndexedDB refused (private mode, blocked, broken): keep going, in memory only.
        storage = fallbackStorage
        persistent = false
      }
      if (cached) {
        if (cached.base && (!base || cached.base.version > base.version)) base = cached.base
        if (cached.inflight) inflight = { outbox: cached.inflight, changes: fromPatchBody(cached.inflight), ticket: ++tickets }
        // Changes made on this page before the cache was read are newer than the cached ones.
        const merged = fromPatchBody(cached.pending)
        for (const [key, change] of pending) merged.set(key, change)
        pending = merged
      }
      hydrated = true
      refreshKeys(new Set([...values.keys(), ...Object.keys(base?.variables ?? {}), ...pending.keys(), ...(inflight?.changes.keys() ?? [])]))
      updateMeta()
    })()
    await started
    if (inflight || pending.size > 0 || syncRequested) {
      send()
      // A left-over patch went first; what was pending follows it without waiting for a debounce.
      if (pending.size > 0) syncRequested = true
    }
  }

  const client: SessionClient = {
    sessionId,
    endpoint,
    get: <T>(key: string) => values.get(key) as T | undefined,
    set(key, value) {
      const stored = toStoredValue(key, value)
      if (values.has(key) && jsonEqual(values.get(key), stored)) return
      write(key, { value: stored })
    },
    delete(key) {
      const problem = keyProblem(key)
      if (problem) throw new SessionValueError(String(key), problem)
      if (values.has(key)) write(key, { deleted: true })
    },
    getSnapshot: () => (variables ??= Object.freeze(Object.fromEntries(values))),
    getMeta: () => meta,
    subscribe(keyOrListener: string | (() => void), maybeListener?: () => void) {
      return typeof keyOrListener === 'function'
        ? keyListeners.add(undefined, keyOrListener)
        : keyListeners.add(keyOrListener, maybeListener!)
    },
    subscribeMeta: (listener) => metaListeners.add(listener),
    onLocalWrite: (listener) => writeListeners.add(listener),
    start,
    async stop() {
      running = false
      if (retryTimer !== undefined) clearTimeout(retryTimer)
      retryTimer = undefined
      await writer.flush()
    },
    async refresh() {
      let snapshot: SessionSnapshot | null
      try {
        snapshot = await transport.get(sessionId)
      } catch (failure) {
        error = asSessionError(failure)
        updateMeta()
        throw error
      }
      // No session on the server (new, deleted or expired): the server's word wins over an old base.
      applyBase(snapshot ?? emptySnapshot(sessionId), [], snapshot === null)
      lastSyncedAt = Date.now()
      if (!requestInFlight && retryTimer === undefined) error = null
      updateMeta()
      return snapshot
    },
    sync() {
      syncRequested = true
      send()
    },
    flush({ timeoutMs = flushTimeoutMs } = {}) {
      const barrier = pending.size > 0 ? tickets + 1 : (inflight?.ticket ?? 0)
      if (barrier <= ackedTicket) return Promise.resolve()
      if (!online) return Promise.reject(new SessionError('offline', 'Offline: changes are kept and will be sent when back online', undefined, true))
      return new Promise<void>((resolve, reject) => {
        const waiter: FlushWaiter = {
          barrier,
          resolve,
          reject,
          timer: setTimeout(
            () => settle(waiter, new SessionError('flush_timeout', `Changes not confirmed within ${timeoutMs} ms; they stay queued`, undefined, true)),
            timeoutMs,
          ),
        }
        waiters.push(waiter)
        client.sync()
      })
    },
    async run<Output>(step: string, input?: JsonValue) {
      const problem = input === undefined ? null : jsonValueProblem(input)
      if (problem) throw new TypeError(`run(${JSON.stringify(step)}): input ${problem}`)
      await client.flush()
      const response = await transport.run<Output>(sessionId, step, input)
      applyBase(response.session)
      lastSyncedAt = Date.now()
      updateMeta()
      return response.output
    },
    setOnline(next) {
      if (online === next) return
      online = next
      updateMeta()
      if (online && (inflight || pending.size > 0)) {
        // Back online: do not wait out a backoff meant for the outage.
        if (retryTimer !== undefined) clearTimeout(retryTimer)
        retryTimer = undefined
        send()
      }
    },
    persist: () => writer.flush(),
  }
  return client
}

function emptySnapshot(sessionId: string): SessionSnapshot {
  return { sessionId, variables: {}, version: 0, createdAt: '', updatedAt: '' }
}

function asSessionError(error: unknown): SessionError {
  return error instanceof SessionError ? error : new SessionError('network_error', String((error as Error)?.message ?? error), undefined, true)
}
