import type { JsonValue, SessionSnapshot } from '../shared/protocol.js'
import { jsonValueProblem, keyProblem } from '../shared/rules.js'
import { schemaFor, schemaProblemSync } from '../shared/schema.js'
import { scopeWorkflow } from '../shared/workflow.js'
import { sessionKeyOf } from './cache.js'
import { toPatchBody, type Change, type Changes } from './changes.js'
import { followChanges } from './live.js'
import { asSessionError, SessionError, SessionValueError } from './errors.js'
import { createSender } from './sender.js'
import { Listeners } from './listeners.js'
import { sameMeta, type SyncStatus } from './meta.js'
import { defaultSessionIdStorage, markSessionCreated, randomId, resolveSessionId } from './session-id.js'
import { FlushBarriers } from './barriers.js'
import { createLocalCopy } from './local-copy.js'
import { stoppedInThisPage } from './startup-read.js'
import { defaultLocks, holdPageLock, openTabChannel } from './tabs.js'
import { createTransport, endpointBase } from './transport.js'
import type { SessionClient, SessionClientOptions } from './types.js'
import { jsonEqual, toStoredValue } from './values.js'
import { LayeredView, type QueuedPatch } from './view.js'

export type { SessionClient, SessionClientOptions } from './types.js'

/** Largest body sent with `keepalive` (browsers allow 64 KiB for all of a page's keepalive requests). */
export const KEEPALIVE_MAX_BYTES = 60 * 1024

/**
 * Creates the framework-free session client. The React provider makes one for you and wires it
 * to the page; without React, the app wires four things itself (the client keeps no timer of its
 * own): when to send (`sync()` after a debounce of local writes), the page hiding (`sendOnHide()`:
 * the local copy is written at once and what is unconfirmed goes out with `keepalive`), the online
 * state (`setOnline()`), and `stop()` when the client is dropped. `flush()` and `run()` send at
 * once, whatever the debounce.
 *
 * @example
 * const client = createSessionClient({ endpoint: '/api/session' })
 * void client.start()                                   // reads the local copy, sends what an earlier page left
 * let timer: ReturnType<typeof setTimeout> | undefined
 * const offLocalWrite = client.onLocalWrite(() => {      // debounce: one patch per pause in typing
 *   clearTimeout(timer)
 *   timer = setTimeout(() => client.sync(), 800)
 * })
 * const onHide = () => { clearTimeout(timer); client.sendOnHide() }
 * document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && onHide())
 * window.addEventListener('pagehide', onHide)
 * client.setOnline(navigator.onLine)
 * window.addEventListener('online', () => client.setOnline(true))
 * window.addEventListener('offline', () => client.setOnline(false))
 *
 * client.set('email', 'a@b.c')   // visible at once: client.get('email') === 'a@b.c'
 * await client.flush()           // on the server now
 * // when done with it: offLocalWrite(); await client.stop()
 */
export function createSessionClient(options: SessionClientOptions = {}): SessionClient {
  const endpoint = endpointBase(options.endpoint)
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
  const sessionKey = sessionKeyOf(endpoint, sessionId)

  let tickets = 0
  let nextSeq = 1
  let syncRequested = false
  const barriers = new FlushBarriers()
  let started: Promise<void> | undefined
  let hydrated = false
  let running = true
  let online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true
  let lastSyncedAt: number | null = null
  let error: SessionError | null = null
  let pageLock: { release: () => void } | undefined
  let channel: ReturnType<typeof openTabChannel> | undefined
  let live: { stop: () => void } | undefined

  const metaListeners = new Listeners()
  const writeListeners = new Listeners()
  // Every change of a layer is saved soon and shows in the status: the view calls this itself.
  const view = new LayeredView((persist) => {
    if (persist) local.save()
    updateMeta()
  })
  const local = createLocalCopy(
    options,
    sessionKey,
    clientId,
    locks,
    () => ({ base: view.base, queue: view.queue.map((patch) => patch.body), pending: toPatchBody(view.pending), nextSeq }),
    () => updateMeta(),
  )
  const sender = createSender({
    post: (body, init) => transport.patch(sessionId, body, init),
    retry: { baseMs: retryBaseMs, maxMs: retryMaxMs },
    onAuthError: options.onAuthError,
    beforeSend: () => client.persist(),
    isQueued: (patch) => view.queue.includes(patch),
    onAck(patch, snapshot) {
      sessionExists()
      error = null
      lastSyncedAt = Date.now()
      if (view.ack(patch, snapshot)) channel?.post(snapshot)
      barriers.confirm(patch.ticket)
      continueSending()
    },
    onRefuse(patch, failure) {
      view.refuse(patch)
      barriers.refuse(patch.ticket, failure)
      continueSending()
    },
    onStatus(failure) {
      if (failure) error = failure
      updateMeta()
    },
    resend: () => send(),
  })
  let meta = computeMeta()

  function computeMeta(): SyncStatus {
    const pendingKeys = view.unconfirmedKeys()
    return {
      isDirty: pendingKeys.length > 0,
      isSyncing: sender.isSending(),
      lastSyncedAt,
      pendingKeys,
      error,
      isOnline: online,
      isPersistent: local.isPersistent(),
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
    view.write(key, change)
    writeListeners.notify()
  }

  /** Turns the pending changes (with every queued one, `carryQueue`) into a patch with the next seq. */
  function seal(carryQueue?: boolean): QueuedPatch {
    return view.seal(
      (changes) => ({ clientId, seq: nextSeq++, ...toPatchBody(changes), ...(options.workflowId !== undefined && { workflowId: options.workflowId }) }),
      ++tickets,
      carryQueue,
    )
  }

  function send(): void {
    if (!running || sender.isBusy() || !online) return
    if (!hydrated) {
      syncRequested = true
      void start()
      return
    }
    if (view.queue.length === 0) {
      if (view.pending.size === 0) return
      seal()
    }
    syncRequested = false
    sender.send(view.queue[0]!, false)
  }

  function continueSending(): void {
    if (view.queue.length > 0 || (view.pending.size > 0 && (syncRequested || barriers.size > 0))) send()
  }

  /** A snapshot from another tab or the change stream: taken when newer, under the local edits. */
  function onRemoteSnapshot(snapshot: SessionSnapshot): void {
    if (snapshot.version > 0) sessionExists()
    if (!view.adopt(snapshot)) return
    lastSyncedAt = Date.now()
    updateMeta()
  }

  /** Reads this session's records: the newest base, and the unconfirmed changes of pages that are gone. */
  async function hydrate(): Promise<void> {
    const taken = await local.read(() => ++tickets)
    hydrated = true
    // Nothing was sent before this point: the closed pages' older changes go out before this page's.
    view.restore(taken.base, taken.patches)
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
      sender.cancelRetry()
      await local.flush()
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
      lastSyncedAt = Date.now()
      if (!sender.isBusy()) error = null
      // No session on the server (new, deleted or expired): the server's word wins over an old base.
      view.adopt(snapshot ?? emptySnapshot(sessionId), snapshot === null)
      updateMeta()
      return snapshot
    },
    sync() {
      syncRequested = true
      send()
    },
    sendOnHide() {
      void client.persist()
      if (!hydrated || !running || !online || sender.isAuthorizing()) return
      const ours = view.queue.every((patch) => patch.body.clientId === clientId)
      let patch: QueuedPatch | undefined
      if (ours && (view.pending.size > 0 || view.queue.length > 1)) {
        // One patch with everything unconfirmed, under a new seq: whichever of it and a patch in
        // flight arrives last, the server ends with every change (an older seq is not applied).
        const carried: Changes = new Map([...view.queue.flatMap((queued) => [...queued.changes]), ...view.pending])
        // Too large for keepalive: a plain send, which may not outlive the page; the next load replays it.
        if (byteLength({ clientId, seq: nextSeq, ...toPatchBody(carried) }) > KEEPALIVE_MAX_BYTES) return client.sync()
        const replaced = view.queue
        patch = seal(true)
        for (const queued of replaced) barriers.replace(queued.ticket, patch.ticket)
      } else if (view.queue[0] && !sender.isSending() && byteLength(view.queue[0].body) <= KEEPALIVE_MAX_BYTES) {
        patch = view.queue[0]
      }
      if (!patch) return
      void client.persist()
      sender.send(patch, true)
    },
    async flush({ timeoutMs = flushTimeoutMs } = {}) {
      // "Before the call" is fixed now: the pending changes become a patch of their own, and the
      // flush waits for the patches queued at this moment.
      if (view.pending.size > 0) seal()
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
      lastSyncedAt = Date.now()
      if (view.adopt(response.session)) channel?.post(response.session)
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
        sender.abandon()
      }
      updateMeta()
      if (online && (view.queue.length > 0 || view.pending.size > 0)) {
        // Back online: do not wait out a backoff meant for the outage.
        sender.cancelRetry()
        send()
      }
    },
    persist: () => {
      local.save()
      return local.flush()
    },
    listSessions: () => transport.list(),
    async deleteSession(id) {
      if (id === sessionId) {
        local.discard()
        running = false
      }
      await transport.remove(id)
      await local.forget(sessionKeyOf(endpoint, id))
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

