import { DEFAULT_BASE, type JsonValue, type SessionSnapshot } from '../shared/protocol.js'
import { jsonValueProblem, keyProblem } from '../shared/rules.js'
import { schemaFor, schemaProblemSync } from '../shared/schema.js'
import { scopeWorkflow } from '../shared/workflow.js'
import { CACHE_FORMAT, createCacheWriter, indexedDbStorage, memoryStorage, recordKey, type CacheStorage } from './cache.js'
import { toPatchBody, type Change, type Changes } from './changes.js'
import { encryptedStorage } from './encrypted-storage.js'
import { followChanges } from './live.js'
import { SessionError, SessionValueError } from './errors.js'
import { Listeners } from './listeners.js'
import { sameMeta, type SessionMeta } from './meta.js'
import { defaultSessionIdStorage, markSessionCreated, randomId, resolveSessionId } from './session-id.js'
import { FlushBarriers } from './barriers.js'
import { beginRead, finishRead, stoppedInThisPage } from './startup-read.js'
import { defaultLocks, holdPageLock, openTabChannel, takeOver } from './tabs.js'
import { createTransport } from './transport.js'
import type { SessionClient, SessionClientOptions } from './types.js'
import { jsonEqual, toStoredValue } from './values.js'
import { LayeredView, type QueuedPatch } from './view.js'

export type { SessionClient, SessionClientOptions } from './types.js'

/** Largest body sent with `keepalive` (browsers allow 64 KiB for all of a page's keepalive requests). */
export const KEEPALIVE_MAX_BYTES = 60 * 1024

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
  // Looked up only when needed: a server render with a given id touches no localStorage.
  const idStorage = () => (options.sessionIdStorage === undefined ? defaultSessionIdStorage() : options.sessionIdStorage)
  const resolved = options.sessionId ? { sessionId: options.sessionId, isNew: false } : resolveSessionId(endpoint, undefined, idStorage())
  const sessionId = resolved.sessionId
  /** The server has no session under this id yet (made here, nothing confirmed): a GET could only answer 404. */
  let serverHasNone = resolved.isNew || options.newSession === true
  const sessionExists = () => {
    if (!serverHasNone) return
    serverHasNone = false
    markSessionCreated(endpoint, sessionId, idStorage())
  }
  const clientId = `c-${randomId()}`
  const transport = createTransport({ endpoint, headers: options.headers, fetch: options.fetch, timeoutMs: options.requestTimeoutMs ?? 15_000 })
  const flushTimeoutMs = options.flushTimeoutMs ?? 30_000
  const retryBaseMs = options.retry?.baseMs ?? 500
  const retryMaxMs = options.retry?.maxMs ?? 30_000
  const locks = options.locks === undefined ? defaultLocks() : options.locks
  const sessionKey = `${endpoint}|${sessionId}`

  const fallbackStorage = memoryStorage()
  const plainStorage = options.storage ?? indexedDbStorage()
  let storage: CacheStorage = options.encryptionKey ? encryptedStorage(plainStorage, options.encryptionKey) : plainStorage
  // In a browser, start reading the local copy now: it overlaps the first render, and start()
  // only applies it. (The read changes nothing but dropping unreadable records, so a client
  // made and dropped, as StrictMode does, costs only the read.)
  const preloaded = typeof window !== 'undefined' ? beginRead(storage, sessionKey, locks) : undefined
  preloaded?.catch(() => {})
  const view = new LayeredView()
  let tickets = 0
  let nextSeq = 1
  /** One per patch request under way; aborted when it is given up (back online), and then forgotten. */
  const requestsInFlight = new Set<AbortController>()
  let syncRequested = false
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let authInProgress = false
  let attempt = 0
  const barriers = new FlushBarriers()
  let started: Promise<void> | undefined
  let hydrated = false
  let running = true
  let online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true
  let persistent = true
  let lastSyncedAt: number | null = null
  let error: SessionError | null = null
  /** Records of closed pages this page took over; deleted once our own record holds their changes. */
  let claimed: string[] = []
  let pageLock: { release: () => void } | undefined
  let channel: ReturnType<typeof openTabChannel> | undefined
  let live: { stop: () => void } | undefined
  /** Deleted through `deleteSession`: nothing of it is sent or written any more. */
  let discarded = false
  const authRetried = new WeakSet<QueuedPatch>()

  const metaListeners = new Listeners()
  const writeListeners = new Listeners()
  let meta = computeMeta()

  const writer = createCacheWriter(
    // `storage` may become the memory fallback later: look it up at each write.
    (value) => storage.set(recordKey(sessionKey, clientId), value),
    () => ({
      format: CACHE_FORMAT,
      clientId,
      savedAt: Date.now(),
      base: view.base,
      queue: view.queue.map((patch) => patch.outbox),
      pending: toPatchBody(view.pending),
      nextSeq,
    }),
    (ok) => {
      persistent = ok && storage !== fallbackStorage
      if (ok && claimed.length > 0) {
        for (const key of claimed.splice(0)) void storage.del(key).catch(() => {})
      }
      updateMeta()
    },
  )

  /** Writes this page's record soon, unless the session was deleted from here. */
  function persistSoon(): void {
    if (!discarded) writer.schedule()
  }

  function computeMeta(): SessionMeta {
    const pendingKeys = view.unconfirmedKeys()
    return {
      isDirty: pendingKeys.length > 0,
      isSyncing: requestsInFlight.size > 0,
      lastSyncedAt,
      pendingKeys,
      error,
      isOnline: online,
      isPersistent: persistent,
      isHydrated: hydrated,
      version: view.base?.version ?? 0,
    }
  }

  function updateMeta(): void {
    const next = computeMeta()
    if (sameMeta(meta, next)) return
    meta = next
    metaListeners.notify()
  }

  function write(key: string, change: Change): void {
    // A change back to what the server already has (or is being sent) is no change at all.
    const confirmed = view.confirmedValue(key)
    const same = 'deleted' in change ? confirmed === undefined : jsonEqual(confirmed, change.value)
    if (same) view.pending.delete(key)
    else view.pending.set(key, change)
    view.refresh([key])
    persistSoon()
    updateMeta()
    writeListeners.notify()
  }

  /** Turns the pending changes (with `alsoCarried` under them) into a patch with the next seq. */
  function sealPending(alsoCarried?: Changes): QueuedPatch {
    const changes: Changes = alsoCarried ? new Map([...alsoCarried, ...view.pending]) : view.pending
    view.pending = new Map()
    const outbox = { clientId, seq: nextSeq++, ...toPatchBody(changes), ...(options.workflowId !== undefined && { workflowId: options.workflowId }) }
    return { outbox, changes, ticket: ++tickets }
  }

  function send(): void {
    if (!running || requestsInFlight.size > 0 || retryTimer !== undefined || authInProgress || !online) return
    if (!hydrated) {
      syncRequested = true
      void start()
      return
    }
    if (view.queue.length === 0) {
      if (view.pending.size === 0) return
      view.queue.push(sealPending())
    }
    syncRequested = false
    transmit(view.queue[0]!, false)
  }

  function continueSending(): void {
    if (view.queue.length > 0 || (view.pending.size > 0 && (syncRequested || barriers.size > 0))) send()
  }

  function transmit(patch: QueuedPatch, keepalive: boolean): void {
    const request = new AbortController()
    requestsInFlight.add(request)
    updateMeta()
    void (async () => {
      let snapshot: SessionSnapshot
      try {
        if (!keepalive) {
          // The outbox is on disk before the request leaves: a reload resends it with the same seq.
          persistSoon()
          await writer.flush()
        }
        request.signal.throwIfAborted()
        snapshot = await transport.patch(sessionId, patch.outbox, { keepalive, signal: request.signal })
      } catch (failure) {
        // Given up and already sent again (setOnline): neither its answer nor its failure counts.
        if (!requestsInFlight.delete(request)) return
        onSendFailure(patch, asSessionError(failure))
        return
      }
      if (!requestsInFlight.delete(request)) return
      onAck(patch, snapshot)
    })()
  }

  function onAck(patch: QueuedPatch, snapshot: SessionSnapshot): void {
    sessionExists()
    view.queue = view.queue.filter((queued) => queued !== patch)
    for (const key of patch.changes.keys()) view.rejected.delete(key)
    attempt = 0
    error = null
    lastSyncedAt = Date.now()
    if (view.setBase(snapshot, patch.changes.keys())) channel?.post(snapshot)
    persistSoon()
    barriers.confirm(patch.ticket)
    updateMeta()
    continueSending()
  }

  function onSendFailure(patch: QueuedPatch, failure: SessionError): void {
    error = failure
    if (!view.queue.includes(patch)) {
      // Superseded by a patch sent when the page hid, which carries these changes too.
      updateMeta()
      return
    }
    if (failure.status === 401 && options.onAuthError && !authRetried.has(patch)) {
      authRetried.add(patch)
      authInProgress = true
      updateMeta()
      void Promise.resolve()
        .then(() => options.onAuthError!(failure))
        .then(
          (retry) => {
            authInProgress = false
            if (retry === true) send()
            else refuse(patch, failure)
          },
          () => {
            authInProgress = false
            refuse(patch, failure)
          },
        )
      return
    }
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
    refuse(patch, failure)
  }

  /** The server refused these changes for good: they stay visible, are not resent, and do not block later ones. */
  function refuse(patch: QueuedPatch, failure: SessionError): void {
    view.queue = view.queue.filter((queued) => queued !== patch)
    for (const [key, change] of patch.changes) view.rejected.set(key, change)
    view.refresh(patch.changes.keys())
    attempt = 0
    barriers.refuse(patch.ticket, failure)
    persistSoon()
    updateMeta()
    continueSending()
  }

  /** A snapshot from another tab or the change stream: taken when newer, under the local edits. */
  function onRemoteSnapshot(snapshot: SessionSnapshot): void {
    if (snapshot.version > 0) sessionExists()
    if (!view.setBase(snapshot)) return
    lastSyncedAt = Date.now()
    persistSoon()
    updateMeta()
  }

  /** Reads this session's records: the newest base, and the unconfirmed changes of pages that are gone. */
  async function hydrate(): Promise<void> {
    const read = await finishRead({ storage, sessionKey, clientId, locks, preloaded })
    if (!read) {
      // IndexedDB refused (private mode, blocked, broken): keep going, in memory only.
      storage = fallbackStorage
      persistent = false
    }
    const taken = takeOver(read?.records ?? [], clientId, read?.alive ?? new Set(), () => ++tickets)
    if (taken.base && (!view.base || taken.base.version > view.base.version)) view.base = taken.base
    // Nothing was sent before this point: the closed pages' older changes go out before this page's.
    view.queue.unshift(...taken.patches)
    claimed.push(...taken.claimed)
    hydrated = true
    view.refresh(view.allKeys())
    if (claimed.length > 0) persistSoon()
    updateMeta()
  }

  async function start(): Promise<void> {
    running = true
    pageLock ??= holdPageLock(locks, clientId)
    if (options.broadcast !== false) channel ??= openTabChannel(`workflow-session|${sessionKey}`, onRemoteSnapshot)
    started ??= hydrate()
    await started
    if (options.live && !live && running) {
      live = followChanges({
        transport,
        sessionId,
        since: () => view.base?.version ?? 0,
        onSnapshot: onRemoteSnapshot,
        onConnected: () => {},
        retry: { baseMs: retryBaseMs, maxMs: retryMaxMs },
      })
    }
    if (view.queue.length > 0 || view.pending.size > 0 || syncRequested) {
      send()
      // Left-over patches went first; what was pending follows without waiting for a debounce.
      if (view.pending.size > 0) syncRequested = true
    }
  }

  const client: SessionClient = {
    sessionId,
    sessionIdRemembered: !options.sessionId && idStorage() !== null,
    endpoint,
    clientId,
    get: <T>(key: string) => view.get(key) as T | undefined,
    set(key, value) {
      const stored = toStoredValue(key, value)
      const problem = schemaProblemSync(schemaFor(options.schema, key), stored)
      if (problem) throw new SessionValueError(key, problem)
      if (view.has(key) && jsonEqual(view.get(key), stored)) return
      write(key, { value: stored })
    },
    delete(key) {
      const problem = keyProblem(key)
      if (problem) throw new SessionValueError(String(key), problem)
      if (view.has(key)) write(key, { deleted: true })
    },
    getSnapshot: () => view.snapshot(),
    getMeta: () => meta,
    subscribe(keyOrListener: string | (() => void), maybeListener?: () => void) {
      return typeof keyOrListener === 'function' ? view.listeners.add(undefined, keyOrListener) : view.listeners.add(keyOrListener, maybeListener!)
    },
    subscribeMeta: (listener) => metaListeners.add(listener),
    onLocalWrite: (listener) => writeListeners.add(listener),
    start,
    async stop() {
      running = false
      if (retryTimer !== undefined) clearTimeout(retryTimer)
      retryTimer = undefined
      await writer.flush()
      stoppedInThisPage.add(clientId)
      // From now on another client may take over what this one left unconfirmed.
      pageLock?.release()
      pageLock = undefined
      channel?.close()
      channel = undefined
      live?.stop()
      live = undefined
    },
    async refresh() {
      let snapshot: SessionSnapshot | null = null
      try {
        if (!serverHasNone) snapshot = await transport.get(sessionId)
      } catch (failure) {
        error = asSessionError(failure)
        updateMeta()
        throw error
      }
      // No session on the server (new, deleted or expired): the server's word wins over an old base.
      view.setBase(snapshot ?? emptySnapshot(sessionId), [], snapshot === null)
      persistSoon()
      lastSyncedAt = Date.now()
      if (requestsInFlight.size === 0 && retryTimer === undefined) error = null
      updateMeta()
      return snapshot
    },
    sync() {
      syncRequested = true
      send()
    },
    sendOnHide() {
      void client.persist()
      if (!hydrated || !running || !online || authInProgress) return
      const ours = view.queue.every((patch) => patch.outbox.clientId === clientId)
      let patch: QueuedPatch | undefined
      if (ours && (view.pending.size > 0 || view.queue.length > 1)) {
        // One patch with everything unconfirmed, under a new seq: whichever of it and a patch in
        // flight arrives last, the server ends with every change (an older seq is not applied).
        const carried: Changes = new Map(view.queue.flatMap((queued) => [...queued.changes]))
        // Too large for keepalive: a plain send, which may not outlive the page; the next load replays it.
        if (byteLength({ clientId, seq: nextSeq, ...toPatchBody(new Map([...carried, ...view.pending])) }) > KEEPALIVE_MAX_BYTES) return client.sync()
        patch = sealPending(carried)
        for (const queued of view.queue) barriers.replace(queued.ticket, patch.ticket)
        view.queue = [patch]
      } else if (view.queue[0] && requestsInFlight.size === 0 && byteLength(view.queue[0].outbox) <= KEEPALIVE_MAX_BYTES) {
        patch = view.queue[0]
      }
      if (!patch) return
      if (retryTimer !== undefined) clearTimeout(retryTimer)
      retryTimer = undefined
      void client.persist()
      transmit(patch, true)
    },
    async flush({ timeoutMs = flushTimeoutMs } = {}) {
      // "Before the call" is fixed now: the pending changes become a patch of their own, and the
      // flush waits for the patches queued at this moment.
      if (view.pending.size > 0) view.queue.push(sealPending())
      const ticketsNow = tickets
      const mine = view.queue.map((patch) => patch.ticket)
      const wasHydrated = hydrated
      await (started ?? start())
      // A closed page's left-over changes were made before this call too: the flush waits for them.
      const leftovers = wasHydrated ? [] : view.queue.map((patch) => patch.ticket).filter((ticket) => ticket > ticketsNow)
      const outstanding = [...mine, ...leftovers].filter((ticket) => view.queue.some((patch) => patch.ticket === ticket))
      if (outstanding.length === 0) return
      if (!online) throw new SessionError('offline', 'Offline: changes are kept and will be sent when back online', undefined, true)
      const confirmed = barriers.wait(outstanding, timeoutMs)
      client.sync()
      return confirmed
    },
    async run<Output>(step: string, input?: JsonValue) {
      const problem = input === undefined ? null : jsonValueProblem(input)
      if (problem) throw new TypeError(`run(${JSON.stringify(step)}): input ${problem}`)
      await client.flush()
      const response = await transport.run<Output>(sessionId, step, input)
      if (response.session.version > 0) sessionExists()
      if (view.setBase(response.session)) channel?.post(response.session)
      persistSoon()
      lastSyncedAt = Date.now()
      updateMeta()
      return response.output
    },
    setOnline(next) {
      if (online === next) return
      online = next
      if (online) {
        // A request sent before or during the outage may hang on a dead connection until its
        // timeout, and nothing else is sent meanwhile: give it up and send it again now (same
        // clientId and seq: the server applies it once).
        for (const request of requestsInFlight) request.abort()
        requestsInFlight.clear()
      }
      updateMeta()
      if (online && (view.queue.length > 0 || view.pending.size > 0)) {
        // Back online: do not wait out a backoff meant for the outage.
        if (retryTimer !== undefined) clearTimeout(retryTimer)
        retryTimer = undefined
        send()
      }
    },
    persist: () => {
      persistSoon()
      return writer.flush()
    },
    listSessions: () => transport.list(),
    async deleteSession(id) {
      if (id === sessionId) {
        discarded = true
        running = false
        writer.cancel()
      }
      await transport.remove(id)
      const prefix = `${endpoint}|${id}#`
      for (const key of await storage.keys().catch(() => [] as string[])) {
        if (key.startsWith(prefix)) await storage.del(key).catch(() => {})
      }
    },
    workflow: (workflowId) =>
      scopeWorkflow(
        { get: (name) => view.get(name), set: (name, value) => client.set(name, value), delete: (name) => client.delete(name), names: () => view.keys() },
        workflowId,
      ),
  }
  return client
}

function emptySnapshot(sessionId: string): SessionSnapshot {
  return { sessionId, variables: {}, version: 0, createdAt: '', updatedAt: '' }
}

function byteLength(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).byteLength
}

function asSessionError(error: unknown): SessionError {
  return error instanceof SessionError ? error : new SessionError('network_error', String((error as Error)?.message ?? error), undefined, true)
}
