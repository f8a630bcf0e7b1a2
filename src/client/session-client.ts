import { Listeners } from '../shared/listeners.js'
import type { JsonValue, SessionSnapshot } from '../shared/protocol.js'
import { jsonValueProblem, keyProblem } from '../shared/rules.js'
import { sessionKeyOf } from './cache.js'
import { type Change, toPatchBody } from './changes.js'
import { SessionValueError } from './errors.js'
import { createLocalCopy, stoppedHere } from './local-copy.js'
import { startPlugins } from './plugins.js'
import { createNumbering, createSendLoop } from './send-loop.js'
import { randomId, sessionIdentity } from './session-id.js'
import { createStatus } from './status.js'
import { defaultLocks, holdPageLock } from './tabs.js'
import { createTransport, endpointBase } from './transport.js'
import type { SessionClient, SessionClientOptions } from './types.js'
import { jsonEqual, toStoredValue } from './values.js'
import { LayeredView } from './view.js'

export type { SessionClient, SessionClientOptions } from './types.js'

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
  const identity = sessionIdentity(endpoint, options)
  const { sessionId } = identity
  const clientId = `c-${randomId()}`
  const transport = createTransport({
    endpoint,
    headers: options.headers,
    fetch: options.fetch,
    timeoutMs: options.requestTimeoutMs ?? 15_000,
  })
  const retry = { baseMs: options.retry?.baseMs ?? 500, maxMs: options.retry?.maxMs ?? 30_000 }
  const locks = options.locks === undefined ? defaultLocks() : options.locks
  const sessionKey = sessionKeyOf(endpoint, sessionId)

  let started: Promise<void> | undefined
  /** The local copy is read and closed pages' changes are taken over: sending may begin. */
  let ready = false
  let running = true
  let pageLock: { release: () => void } | undefined
  let stopPlugins: Array<() => void> = []
  const writeListeners = new Listeners()
  const confirmedListeners = new Listeners<[SessionSnapshot]>()

  // The parts, each made after what it reads: the status (which the others tell what they know),
  // the numbering, the view the hooks read, the local copy of the view on the device, the send loop.
  const status = createStatus()
  const numbering = createNumbering()
  const view = new LayeredView()
  const local = createLocalCopy(
    { storage: options.storage, wrap: (storage) => plugins.reduce((wrapped, plugin) => plugin.wrapStorage?.(wrapped) ?? wrapped, storage) },
    sessionKey,
    clientId,
    locks,
    () => ({
      base: view.base,
      queue: view.queue.map((patch) => patch.body),
      pending: toPatchBody(view.pending),
      nextSeq: numbering.nextSeq(),
    }),
    () => status.set({ isPersistent: local.isPersistent() }),
  )
  const persist = () => {
    local.save(false)
    return local.flush()
  }
  const loop = createSendLoop({
    view,
    status,
    numbering,
    clientId,
    workflowId: options.workflowId,
    post: (body, init) => transport.patch(sessionId, body, init),
    retry,
    onAuthError: options.onAuthError,
    persist,
    isRunning: () => running,
    isReady: () => ready,
    onConfirmed(snapshot, taken) {
      identity.exists()
      if (taken) confirmedListeners.notify(snapshot)
    },
  })
  // Every change of a layer is saved soon and shows in the status.
  view.onLayersChange((outboxChanged) => {
    local.save(outboxChanged)
    status.layers(view.unconfirmedKeys(), view.base?.version ?? 0)
  })
  // The common reload has only a base to read: it shows as soon as it is read, not at start()
  // (which still reads what a client stopped in this page may have left since).
  void local.baseOnly.then((base) => {
    if (base === undefined || status.current.isHydrated) return
    status.set({ isHydrated: true })
    view.restore(base, [])
  })

  /** A snapshot from another tab, the change stream or a step: taken when newer, under the local edits. */
  function receive(snapshot: SessionSnapshot, fromStep = false): void {
    if (snapshot.version > 0) identity.exists()
    const taken = view.rebase(snapshot)
    if (taken && fromStep) confirmedListeners.notify(snapshot)
    if (taken || fromStep) status.synced(false)
  }

  /** Reads the local copy (once), takes over what closed pages left, starts the plugins and resumes sending. */
  async function start(): Promise<void> {
    running = true
    pageLock ??= holdPageLock(locks, clientId)
    started ??= local.read(numbering.nextTicket).then(({ base, patches }) => {
      ready = true
      status.set({ isHydrated: true, isPersistent: local.isPersistent() })
      // Nothing was sent before this point: the closed pages' older changes go out before this page's.
      if (patches.length > 0 || (base !== null && base !== view.base)) view.restore(base, patches)
    })
    await started
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stop() may have run while awaiting
    if (running && stopPlugins.length === 0) {
      stopPlugins = startPlugins(plugins, {
        sessionId,
        clientId,
        sessionKey,
        retry,
        version: () => view.base?.version ?? 0,
        receive: (snapshot) => receive(snapshot),
        onConfirmed: (listener) => confirmedListeners.add(listener),
        events: (since, signal) => transport.events(sessionId, since, signal),
      })
    }
    loop.resume()
  }

  /** Something is to be sent before the client was started (the app called sync() first): start it, and the send follows. */
  function startToSend(): void {
    if (!ready && running && status.current.isOnline && !loop.sender.isBusy()) void start()
  }

  function write(key: string, change: Change): void {
    view.write(key, change)
    writeListeners.notify()
  }

  const client: SessionClient = {
    sessionId,
    sessionIdRemembered: identity.remembered,
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
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- a JavaScript caller may pass any value (a symbol among them)
      if (problem) throw new SessionValueError(String(key), problem)
      if (view.has(key)) write(key, { deleted: true })
    },
    getSnapshot: () => view.snapshot(),
    getStatus: () => status.current,
    subscribe(keyOrListener: string | (() => void), maybeListener?: () => void) {
      return typeof keyOrListener === 'function'
        ? view.listeners.add(undefined, keyOrListener)
        : view.listeners.add(keyOrListener, maybeListener!)
    },
    subscribeStatus: (listener) => status.listeners.add(listener),
    onLocalWrite: (listener) => writeListeners.add(listener),
    start,
    async stop() {
      running = false
      loop.sender.cancelRetry()
      await local.flush()
      // Started again while the local copy was written (a provider re-wired at once): keep running.
      // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- start() may have run while awaiting
      if (running) return
      stoppedHere(clientId)
      // From now on another client may take over what this one left unconfirmed.
      pageLock?.release()
      pageLock = undefined
      for (const stopPlugin of stopPlugins.splice(0)) stopPlugin()
    },
    async refresh() {
      // Made here and never written: there is nothing to ask the server, and nothing was synced.
      if (identity.serverHasNone()) return null
      let snapshot: SessionSnapshot | null
      try {
        snapshot = await transport.get(sessionId)
      } catch (failure) {
        throw status.failed(failure)
      }
      // No session on the server (deleted or expired): the server's word wins over an old base.
      view.rebase(snapshot ?? { sessionId, variables: {}, version: 0, createdAt: '', updatedAt: '' }, snapshot === null)
      status.synced(!loop.sender.isBusy())
      return snapshot
    },
    sync() {
      loop.sync()
      startToSend()
    },
    sendOnHide: () => loop.sendOnHide(),
    flush: ({ timeoutMs = options.flushTimeoutMs ?? 30_000 } = {}) => loop.flush(timeoutMs, started ?? start()),
    async run<Output>(step: string, input?: JsonValue) {
      const problem = input === undefined ? null : jsonValueProblem(input)
      if (problem) throw new TypeError(`run(${JSON.stringify(step)}): input ${problem}`)
      await client.flush()
      const response = await transport.run<Output>(sessionId, step, input)
      receive(response.session, true)
      return response.output
    },
    setOnline(online) {
      if (status.current.isOnline === online) return
      // A request sent before or during the outage may hang on a dead connection until its
      // timeout, and nothing else is sent meanwhile: give it up and send it again now (same
      // clientId and seq: the server applies it once).
      if (online) loop.sender.abandon()
      status.set({ isOnline: online, isSyncing: loop.sender.isSending() })
      if (online && (view.queue.length > 0 || view.pending.size > 0)) {
        // Back online: do not wait out a backoff meant for the outage.
        loop.sender.cancelRetry()
        loop.send()
        startToSend()
      }
    },
    persist,
    async adopt() {
      // The changes made before signing in are on the server first, then the session becomes the user's.
      await client.flush()
      receive(await transport.adopt(sessionId), true)
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
