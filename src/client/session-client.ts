import type { JsonValue, SessionSnapshot } from '../shared/protocol.js'
import { jsonValueProblem, keyProblem, utf8Length } from '../shared/rules.js'
import { FlushBarriers } from './barriers.js'
import { sessionKeyOf } from './cache.js'
import { toPatchBody, type Change } from './changes.js'
import { SessionError, SessionValueError } from './errors.js'
import { Listeners } from './listeners.js'
import { createLocalCopy, stoppedHere } from './local-copy.js'
import { createStatus } from './meta.js'
import type { PluginSession } from './plugins.js'
import { createSender } from './sender.js'
import { defaultSessionIdStorage, markSessionCreated, randomId, resolveSessionId } from './session-id.js'
import { defaultLocks, holdPageLock } from './tabs.js'
import { createTransport, endpointBase } from './transport.js'
import type { SessionClient, SessionClientOptions } from './types.js'
import { jsonEqual, toStoredValue } from './values.js'
import { LayeredView, type QueuedPatch } from './view.js'

export type { SessionClient, SessionClientOptions } from './types.js'

/** Largest body sent with `keepalive` (browsers allow 64 KiB for all of a page's keepalive requests). */
export const KEEPALIVE_MAX_BYTES = 60 * 1024

const byteLength = (body: unknown) => utf8Length(JSON.stringify(body))

/**
 * Creates the framework-free session client. The React provider makes one for you and wires it
 * to the page; without React, `connectToPage(client)` does the same wiring (see its docs), or
 * the app wires four things itself (the client keeps no timer of its own): when to send
 * (`sync()` after a debounce of local writes), the page hiding (`sendOnHide()`), the online state
 * (`setOnline()`), and `stop()` when the client is dropped. `flush()` and `run()` send at once.
 *
 * @example
 * const client = createSessionClient({ endpoint: '/api/session' })
 * const disconnect = connectToPage(client)   // start, debounced sync, page hide, online state
 * client.set('email', 'a@b.c')               // visible at once: client.get('email') === 'a@b.c'
 * await client.flush()                       // on the server now
 * // when done with it: await disconnect()
 */
export function createSessionClient(options: SessionClientOptions = {}): SessionClient {
  const endpoint = endpointBase(options.endpoint)
  const plugins = options.plugins ?? []
  // Looked up only when needed: a server render with a given id touches no localStorage.
  const idStorage = () => (options.sessionIdStorage === undefined ? defaultSessionIdStorage() : options.sessionIdStorage)
  const resolved = options.sessionId ? { sessionId: options.sessionId, isNew: false } : resolveSessionId(endpoint, undefined, idStorage())
  const sessionId = resolved.sessionId
  /** The server has no session under this id yet (made here, nothing confirmed): a GET could only answer 404. */
  let serverHasNone = resolved.isNew || options.newSession === true
  const sessionExists = () => {
    if (serverHasNone) markSessionCreated(endpoint, sessionId, idStorage())
    serverHasNone = false
  }
  const clientId = `c-${randomId()}`
  const transport = createTransport({ endpoint, headers: options.headers, fetch: options.fetch, timeoutMs: options.requestTimeoutMs ?? 15_000 })
  const retry = { baseMs: options.retry?.baseMs ?? 500, maxMs: options.retry?.maxMs ?? 30_000 }
  const locks = options.locks === undefined ? defaultLocks() : options.locks
  const sessionKey = sessionKeyOf(endpoint, sessionId)

  let tickets = 0
  let nextSeq = 1
  let syncRequested = false
  let started: Promise<void> | undefined
  /** The local copy is read and closed pages' changes are taken over: sending may begin. */
  let ready = false
  let running = true
  let pageLock: { release: () => void } | undefined
  let stopPlugins: Array<() => void> = []
  const barriers = new FlushBarriers()
  const writeListeners = new Listeners()
  const confirmedListeners = new Listeners<[SessionSnapshot]>()
  // Every change of a layer is saved soon and shows in the status: the view calls this itself.
  const view = new LayeredView((outboxChanged) => {
    local.save(outboxChanged)
    status.update()
  })
  const local = createLocalCopy(
    { storage: options.storage, wrap: (storage) => plugins.reduce((wrapped, plugin) => plugin.wrapStorage?.(wrapped) ?? wrapped, storage) },
    sessionKey,
    clientId,
    locks,
    () => ({ base: view.base, queue: view.queue.map((patch) => patch.body), pending: toPatchBody(view.pending), nextSeq }),
    () => status.update(),
  )
  const sender = createSender({
    post: (body, init) => transport.patch(sessionId, body, init),
    retry,
    onAuthError: options.onAuthError,
    beforeSend: () => client.persist(),
    isQueued: (patch) => view.queue.includes(patch),
    onAck(patch, snapshot) {
      sessionExists()
      status.succeeded(true)
      if (view.ack(patch, snapshot)) confirmedListeners.notify(snapshot)
      barriers.confirm(patch.ticket)
      continueSending()
    },
    onRefuse(patch, failure) {
      view.refuse(patch)
      barriers.refuse(patch.ticket, failure)
      continueSending()
    },
    onStatus: (failure) => status.update(failure),
    resend: () => send(),
  })
  const status = createStatus(view, () => sender.isSending(), () => local.isPersistent())
  // The common reload has only a base to read: it shows as soon as it is read, not at start()
  // (which still reads what a client stopped in this page may have left since).
  void local.baseOnly.then((base) => {
    if (base === undefined || status.hydrated) return
    status.hydrated = true
    view.restore(base, [])
  })

  /** Turns the pending changes (with every queued one, `carryQueue`) into a patch with the next seq. */
  function seal(carryQueue?: boolean): QueuedPatch {
    return view.seal(
      (changes) => ({ clientId, seq: nextSeq++, ...toPatchBody(changes), ...(options.workflowId !== undefined && { workflowId: options.workflowId }) }),
      ++tickets,
      carryQueue,
    )
  }

  function send(): void {
    if (!running || sender.isBusy() || !status.online) return
    if (!ready) {
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

  /** A snapshot from another tab, the change stream or a step: taken when newer, under the local edits. */
  function receive(snapshot: SessionSnapshot, fromStep = false): void {
    if (snapshot.version > 0) sessionExists()
    const taken = view.adopt(snapshot)
    if (taken && fromStep) confirmedListeners.notify(snapshot)
    if (taken || fromStep) status.succeeded(false)
  }

  async function start(): Promise<void> {
    running = true
    pageLock ??= holdPageLock(locks, clientId)
    started ??= local.read(() => ++tickets).then(({ base, patches }) => {
      status.hydrated = ready = true
      // Nothing was sent before this point: the closed pages' older changes go out before this page's.
      view.restore(base, patches)
    })
    await started
    if (running && stopPlugins.length === 0) {
      const session: PluginSession = {
        sessionId,
        clientId,
        sessionKey,
        retry,
        version: () => view.base?.version ?? 0,
        receive: (snapshot) => receive(snapshot),
        onConfirmed: (listener) => confirmedListeners.add(listener),
        events: (since, signal) => transport.events(sessionId, since, signal),
      }
      stopPlugins = plugins.flatMap((plugin) => (plugin.start ? [plugin.start(session)] : []))
    }
    if (view.queue.length > 0 || view.pending.size > 0 || syncRequested) {
      send()
      // Left-over patches went first; what was pending follows without waiting for a debounce.
      if (view.pending.size > 0) syncRequested = true
    }
  }

  function write(key: string, change: Change): void {
    view.write(key, change)
    writeListeners.notify()
  }

  const client: SessionClient = {
    sessionId,
    sessionIdRemembered: !options.sessionId && idStorage() !== null,
    endpoint,
    clientId,
    get: <T>(key: string) => view.get(key) as T | undefined,
    set(key, value) {
      const stored = toStoredValue(key, value)
      for (const plugin of plugins) {
        const problem = plugin.validate?.(key, stored)
        if (problem) throw new SessionValueError(key, problem)
      }
      if (!view.has(key) || !jsonEqual(view.get(key), stored)) write(key, { value: stored })
    },
    delete(key) {
      const problem = keyProblem(key)
      if (problem) throw new SessionValueError(String(key), problem)
      if (view.has(key)) write(key, { deleted: true })
    },
    getSnapshot: () => view.snapshot(),
    getStatus: () => status.current,
    getMeta: () => status.current,
    subscribe(keyOrListener: string | (() => void), maybeListener?: () => void) {
      return typeof keyOrListener === 'function' ? view.listeners.add(undefined, keyOrListener) : view.listeners.add(keyOrListener, maybeListener!)
    },
    subscribeStatus: (listener) => status.listeners.add(listener),
    subscribeMeta: (listener) => status.listeners.add(listener),
    onLocalWrite: (listener) => writeListeners.add(listener),
    start,
    async stop() {
      running = false
      sender.cancelRetry()
      await local.flush()
      stoppedHere(clientId)
      // From now on another client may take over what this one left unconfirmed.
      pageLock?.release()
      pageLock = undefined
      for (const stopPlugin of stopPlugins.splice(0)) stopPlugin()
    },
    async refresh() {
      // Made here and never written: there is nothing to ask the server, and nothing was synced.
      if (serverHasNone) return null
      let snapshot: SessionSnapshot | null
      try {
        snapshot = await transport.get(sessionId)
      } catch (failure) {
        throw status.update(failure)
      }
      // No session on the server (deleted or expired): the server's word wins over an old base.
      view.adopt(snapshot ?? { sessionId, variables: {}, version: 0, createdAt: '', updatedAt: '' }, snapshot === null)
      status.succeeded(!sender.isBusy())
      return snapshot
    },
    sync() {
      syncRequested = true
      send()
    },
    sendOnHide() {
      void client.persist()
      if (!ready || !running || !status.online || sender.isAuthorizing()) return
      let patch: QueuedPatch | undefined
      if (view.queue.every((queued) => queued.body.clientId === clientId) && (view.pending.size > 0 || view.queue.length > 1)) {
        // One patch with everything unconfirmed, under a new seq: whichever of it and a patch in
        // flight arrives last, the server ends with every change (an older seq is not applied).
        // Too large for keepalive: a plain send, which may not outlive the page; the next load replays it.
        if (byteLength({ clientId, seq: nextSeq, ...toPatchBody(view.unconfirmedChanges()) }) > KEEPALIVE_MAX_BYTES) return client.sync()
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
    async flush({ timeoutMs = options.flushTimeoutMs ?? 30_000 } = {}) {
      // "Before the call" is fixed now: the pending changes become a patch of their own, and the
      // flush waits for the patches queued at this moment.
      if (view.pending.size > 0) seal()
      const ticketsNow = tickets
      const mine = view.queue.map((patch) => patch.ticket)
      const wasReady = ready
      await (started ?? start())
      // A closed page's left-over changes were made before this call too: the flush waits for them.
      const leftovers = wasReady ? [] : view.queue.map((patch) => patch.ticket).filter((ticket) => ticket > ticketsNow)
      const outstanding = [...mine, ...leftovers].filter((ticket) => view.queue.some((patch) => patch.ticket === ticket))
      if (outstanding.length === 0) return
      if (!status.online) throw new SessionError('offline', 'Offline: changes are kept and will be sent when back online', undefined, true)
      const confirmed = barriers.wait(outstanding, timeoutMs)
      client.sync()
      return confirmed
    },
    async run<Output>(step: string, input?: JsonValue) {
      const problem = input === undefined ? null : jsonValueProblem(input)
      if (problem) throw new TypeError(`run(${JSON.stringify(step)}): input ${problem}`)
      await client.flush()
      const response = await transport.run<Output>(sessionId, step, input)
      receive(response.session, true)
      return response.output
    },
    setOnline(online) {
      if (status.online === online) return
      status.online = online
      if (online) {
        // A request sent before or during the outage may hang on a dead connection until its
        // timeout, and nothing else is sent meanwhile: give it up and send it again now (same
        // clientId and seq: the server applies it once).
        sender.abandon()
      }
      status.update()
      if (online && (view.queue.length > 0 || view.pending.size > 0)) {
        // Back online: do not wait out a backoff meant for the outage.
        sender.cancelRetry()
        send()
      }
    },
    persist: () => {
      local.save(false)
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
  }
  return client
}
