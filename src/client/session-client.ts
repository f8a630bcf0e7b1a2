import { Listeners } from '../shared/listeners.js'
import type { JsonValue, SessionSnapshot } from '../shared/protocol.js'
import { jsonValueProblem, keyProblem, utf8Length } from '../shared/rules.js'
import { FlushBarriers } from './barriers.js'
import { sessionKeyOf } from './cache.js'
import { type Change, toPatchBody } from './changes.js'
import { SessionError, SessionValueError } from './errors.js'
import { createLocalCopy, stoppedHere } from './local-copy.js'
import { startPlugins } from './plugins.js'
import type { ClientInternals, ClientProbe } from './probe.js'
import { createRuns } from './runs.js'
import { clientSchema } from './schema-versions.js'
import { createSender } from './sender.js'
import { randomId, sessionIdentity } from './session-id.js'
import { createStatus } from './status.js'
import { defaultLocks, holdPageLock, type LeftByPage, livePages } from './tabs.js'
import { createTransport, endpointBase } from './transport.js'
import type { SessionClient, SessionClientOptions } from './types.js'
import { jsonEqual, toStoredValue } from './values.js'
import { LayeredView, type QueuedPatch } from './view.js'

export type { SessionClient, SessionClientOptions } from './types.js'

/** Largest body sent with `keepalive` (browsers allow 64 KiB for all of a page's keepalive requests). */
const KEEPALIVE_MAX_BYTES = 60 * 1024

const byteLength = (body: unknown) => utf8Length(JSON.stringify(body))

/**
 * Creates the framework-free session client. The React provider makes one for you and wires it
 * to the page; without React, `connectToPage(client)` does the same wiring (see its docs), or
 * the app wires four things itself (the client keeps no timer of its own): when to send
 * (`sync()` after a debounce of local writes), the page hiding (`sendOnHide()`), the online state
 * (`setOnline()`), and `stop()` when the client is dropped. `flush()` and `run()` send at once.
 *
 * This file is where to read what happens to a keystroke, top to bottom, until its POST leaves:
 *
 * 1. `set()` checks the value (`toStoredValue`, the plugins' `validate`) and `write()`s it;
 * 2. the view shows it at once, to that key's listeners only (`view.write`);
 * 3. the view's layers changed: the local copy saves the outbox soon, the status shows unsaved keys;
 * 4. the `onLocalWrite` listeners run: the page wiring (`connect.ts`) calls `sync()` after its debounce;
 * 5. `sync()` → `send()`: the pending changes are `seal()`ed into a patch with the next seq;
 * 6. the sender writes the local copy first (a reload resends the same seq), then `post()`s the
 *    patch through the transport, one request in flight, with backoff and the 401 handler;
 * 7. the answer: `confirmed()` makes the server's snapshot the base, answers flush barriers and
 *    sends what is next; `refused()` keeps the change visible and never resends it.
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
  const schema = clientSchema(options.migrations)
  // Devtools' hook (`attachProbe`): told by the parts below as they work; none unless devtools attach.
  let probe: ClientProbe | undefined
  const transport = createTransport({
    schemaVersion: schema.field,
    // A run or a step call refused for this page's schema version says so too (a patch also stops the queue).
    onSchemaMismatch: (failure) => {
      if (failure.schemaVersion !== undefined && failure.schemaVersion !== schema.version) updateNeeded(failure.schemaVersion)
    },
    endpoint,
    headers: options.headers,
    // A request devtools made to fail is answered here, as its server would; every other one goes out.
    fetch: async (input, init) =>
      probe?.fault(input instanceof Request ? input.url : String(input), init?.method ?? 'GET') ??
      (options.fetch ?? globalThis.fetch)(input, init),
    timeoutMs: options.requestTimeoutMs ?? 15_000,
    // Only what changed comes back (docs/protocol.md, "Deltas"), applied to the server's snapshot the view holds.
    ...(options.deltas !== false && { base: () => schema.held(view.base) }),
  })
  const retry = { baseMs: options.retry?.baseMs ?? 500, maxMs: options.retry?.maxMs ?? 30_000 }
  const locks = options.locks === undefined ? defaultLocks() : options.locks
  const sessionKey = sessionKeyOf(endpoint, sessionId)

  let started: Promise<void> | undefined
  /** The local copy is read and closed pages' changes are taken over: sending may begin. */
  let ready = false
  let running = true
  /** `sync()` was asked for (or a flush waits): what is pending goes out after the request in flight. */
  let syncRequested = false
  /** The server refused a patch for this page's schema version: nothing more is sent until the page is reloaded. */
  let outdated = false
  let pageLock: ReturnType<typeof holdPageLock> | undefined
  /** What other pages of this session left on the device, read at start. */
  let leftByPages: LeftByPage[] | null = null
  /** The online state the page last reported (`setOnline`), whether or not devtools hold the client offline. */
  let reportedOnline: boolean | undefined
  let stopPlugins: Array<() => void> = []
  /** This page's numbering: the seq of its next patch, and tickets (the local send order, which flush barriers count in). */
  let nextSeq = 1
  let lastTicket = 0
  const nextTicket = () => ++lastTicket
  const writeListeners = new Listeners()
  const confirmedListeners = new Listeners<[SessionSnapshot]>()
  const barriers = new FlushBarriers()

  // The parts, each made after what it reads: the status (which the others tell what they know),
  // the view the hooks read, the local copy of the view on the device, the sender of patches.
  const status = createStatus()
  const view = new LayeredView()
  const local = createLocalCopy(
    { storage: options.storage, wrap: (storage) => plugins.reduce((wrapped, plugin) => plugin.wrapStorage?.(wrapped) ?? wrapped, storage) },
    sessionKey,
    clientId,
    locks,
    () => ({ base: view.base, queue: view.queue.map((patch) => patch.body), pending: toPatchBody(view.pending), nextSeq, ...schema.field }),
    (ok) => {
      probe?.event('saved', ok)
      status.set({ isPersistent: local.isPersistent() })
    },
  )
  const persist = () => {
    local.save(false)
    return local.flush()
  }
  const sender = createSender({
    persist,
    post: (body, init) => transport.patch(sessionId, body, init),
    retry,
    onAuthError: options.onAuthError,
    isQueued: (patch) => view.queue.includes(patch),
    isOutdated: (failure) => {
      if (failure.schemaVersion === undefined || failure.schemaVersion === schema.version) return false
      outdated = true
      updateNeeded(failure.schemaVersion)
      // The queue stays (a reload of the page sends it); no flush waits for it in vain.
      for (const queued of view.queue) barriers.refuse(queued.ticket, failure)
      return true
    },
    onConfirmed: confirmed,
    onRefused: refused,
    onFailed: (patch, failure, retryAt) => probe?.event('failed', patch, failure, retryAt),
    onSend: (patch, keepalive) => probe?.event('send', patch, keepalive),
    onStatus: (failure) =>
      failure ? void status.failed(failure, { isSyncing: sender.isSending() }) : status.set({ isSyncing: sender.isSending() }),
    send: () => send(),
  })

  // 1. A keystroke: the value is checked, then written.
  function set(key: string, value: unknown): void {
    const stored = toStoredValue(key, value)
    for (const plugin of plugins) {
      const problem = plugin.validate?.(key, stored)
      if (problem) throw new SessionValueError(key, problem)
    }
    if (!view.has(key) || !jsonEqual(view.get(key), stored)) write(key, { value: stored })
  }

  // 2. It shows at once; 4. the page wiring hears of it (and calls sync() after its debounce).
  function write(key: string, change: Change): void {
    view.write(key, change)
    probe?.event('write', key)
    writeListeners.notify()
  }

  // 3. Every change of a layer (this write, a seal, an answer) is saved soon and shows in the status.
  view.onLayersChange((outboxChanged) => {
    local.save(outboxChanged)
    status.layers(view.unconfirmedKeys(), view.base?.version ?? 0)
    if (view.base === seenBase) return
    seenBase = view.base
    const held = view.base?.schemaVersion ?? 1
    if (held !== schema.version && view.base && view.base.version > 0) updateNeeded(held)
    status.set({ setAside: schema.setAside(view.base) })
  })
  /** The base the checks above last saw: they run when it changes, not on every keystroke. */
  let seenBase: SessionSnapshot | null = null

  /** The server (or what it sent) is at another schema version than this page: the page must be updated (reloaded). */
  function updateNeeded(server: number): void {
    if (status.current.needsUpdate) return
    status.set({ needsUpdate: true })
    options.onUpdateNeeded?.({ page: schema.version, server })
  }

  // 5. The debounce is over: send what is pending now, or after the request in flight.
  function sync(): void {
    syncRequested = true
    send()
    startToSend()
  }

  /** Sends the next patch (sealing the pending changes into one when none is queued), unless one is under way. */
  function send(): void {
    if (!running || sender.isBusy() || !status.current.isOnline || outdated) return
    // Not started yet: sent once start() has read the local copy (it calls resumeSending()).
    if (!ready) {
      syncRequested = true
      return
    }
    if (view.queue.length === 0) {
      if (view.pending.size === 0) return
      seal()
    }
    syncRequested = false
    // 6. The sender writes the local copy, then posts the patch.
    sender.send(view.queue[0]!, false)
  }

  /** Turns the pending changes (with every queued one, `carryQueue`) into a patch with the next seq. */
  function seal(carryQueue?: boolean): QueuedPatch {
    return view.seal(
      (changes) => ({
        clientId,
        seq: nextSeq++,
        ...toPatchBody(changes),
        ...(options.workflowId !== undefined && { workflowId: options.workflowId }),
        ...schema.field,
      }),
      nextTicket(),
      carryQueue,
    )
  }

  // 7. The server's answer.
  function confirmed(patch: QueuedPatch, snapshot: SessionSnapshot): void {
    status.synced(true, { isSyncing: sender.isSending() })
    identity.exists()
    probe?.event('confirmed', patch, snapshot)
    if (view.ack(patch, snapshot)) confirmedListeners.notify(snapshot)
    barriers.confirm(patch.ticket)
    sendNext()
  }

  function refused(patch: QueuedPatch, failure: SessionError): void {
    probe?.event('refused', patch, failure)
    view.refuse(patch)
    barriers.refuse(patch.ticket, failure)
    sendNext()
  }

  function sendNext(): void {
    if (view.queue.length > 0 || (view.pending.size > 0 && (syncRequested || barriers.size > 0))) send()
  }

  /** Something is to be sent before the client was started (the app called sync() first): start it, and the send follows. */
  function startToSend(): void {
    if (!ready && running && status.current.isOnline && !sender.isBusy()) void start()
  }

  /** After `start()`: what is queued goes out, and what was pending follows without a debounce. */
  function resumeSending(): void {
    if (view.queue.length === 0 && view.pending.size === 0 && !syncRequested) return
    send()
    // Left-over patches went first; what was pending follows without waiting for a debounce.
    if (view.pending.size > 0) syncRequested = true
  }

  /** As the page hides: everything unconfirmed in one patch, with `keepalive`. */
  function sendOnHide(): void {
    void persist()
    if (!ready || !running || !status.current.isOnline || sender.isAuthorizing() || outdated) return
    let patch: QueuedPatch | undefined
    if (view.queue.every((queued) => queued.body.clientId === clientId) && (view.pending.size > 0 || view.queue.length > 1)) {
      // One patch with everything unconfirmed, under a new seq: whichever of it and a patch in
      // flight arrives last, the server ends with every change (an older seq is not applied).
      // Too large for keepalive: a plain send, which may not outlive the page; the next load replays it.
      if (byteLength({ clientId, seq: nextSeq, ...toPatchBody(view.unconfirmedChanges()) }) > KEEPALIVE_MAX_BYTES) {
        sync()
        return
      }
      const replaced = view.queue
      patch = seal(true)
      for (const queued of replaced) barriers.replace(queued.ticket, patch.ticket)
    } else if (view.queue[0] && !sender.isSending() && byteLength(view.queue[0].body) <= KEEPALIVE_MAX_BYTES) {
      patch = view.queue[0]
    }
    if (!patch) return
    void persist()
    sender.send(patch, true)
  }

  /** Resolves when every change made before the call is confirmed (see `SessionClient.flush`). */
  async function flush({ timeoutMs = options.flushTimeoutMs ?? 30_000 } = {}): Promise<void> {
    // "Before the call" is fixed now: the pending changes become a patch of their own, and the
    // flush waits for the patches queued at this moment.
    if (view.pending.size > 0) seal()
    const ticketsNow = lastTicket
    const mine = view.queue.map((patch) => patch.ticket)
    const wasReady = ready
    await (started ?? start())
    if (outdated) throw status.current.error ?? new SessionError('schema_mismatch', 'This page must be updated (reloaded)', 409)
    // A closed page's left-over changes were made before this call too: the flush waits for them.
    const leftovers = wasReady ? [] : view.queue.map((patch) => patch.ticket).filter((ticket) => ticket > ticketsNow)
    const outstanding = [...mine, ...leftovers].filter((ticket) => view.queue.some((patch) => patch.ticket === ticket))
    if (outstanding.length === 0) return
    if (!status.current.isOnline)
      throw new SessionError('offline', 'Offline: changes are kept and will be sent when back online', undefined, true)
    const waited = barriers.wait(outstanding, timeoutMs)
    sync()
    return waited
  }

  // Runs: started once per run id, watched until they end, however long (runs.ts).
  const runs = createRuns({
    sessionId,
    transport,
    local,
    retry,
    flush,
    receive: (snapshot) => receive(snapshot, true),
    serverHasNone: () => identity.serverHasNone(),
  })

  // The common reload has only a base to read: it shows as soon as it is read, not at start()
  // (which still reads what a client stopped in this page may have left since).
  void local.baseOnly.then((base) => {
    if (base === undefined || status.current.isHydrated) return
    status.set({ isHydrated: true })
    view.restore(schema.base(base), [])
  })

  /** A snapshot from another tab, the change stream or a step: taken when newer, under the local edits. */
  function receive(snapshot: SessionSnapshot, fromStep = false): void {
    if (snapshot.version > 0) identity.exists()
    const taken = view.rebase(snapshot)
    if (taken) probe?.event('received', snapshot)
    if (taken && fromStep) confirmedListeners.notify(snapshot)
    if (taken || fromStep) status.synced(false)
  }

  /** Reads the local copy (once), takes over what closed pages left, starts the plugins and resumes sending. */
  async function start(): Promise<void> {
    running = true
    pageLock ??= holdPageLock(locks, clientId)
    started ??= local.read(nextTicket).then(({ base, patches, left }) => {
      ready = true
      leftByPages = left
      status.set({ isHydrated: true, isPersistent: local.isPersistent() })
      // Nothing was sent before this point: the closed pages' older changes go out before this page's.
      // What the device kept in an older schema version is migrated before it shows or is sent.
      if (patches.length > 0 || (base !== null && base !== view.base))
        view.restore(
          schema.base(base),
          patches.map((patch) => schema.patch(patch, base)),
        )
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
        base: () => schema.held(view.base),
        receive: (snapshot) => receive(snapshot),
        receiveRun: runs.receive,
        onConfirmed: (listener) => confirmedListeners.add(listener),
        events: (since, signal) => transport.events(sessionId, since, signal),
        feed: (change) => probe?.event('feed', change),
      })
      // Runs this device started before a reload: started again under their ids (once on the server), and watched.
      void runs.resume()
    }
    resumeSending()
  }

  const client: SessionClient = {
    sessionId,
    sessionIdRemembered: identity.remembered,
    endpoint,
    clientId,
    get: <T>(key: string) => view.get(key) as T | undefined,
    set,
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
      runs.stop()
      sender.cancelRetry()
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
      // The base on the device first (a few ms after a reload): the server answers only what changed since, or 304.
      if (options.deltas !== false) await (started ?? local.baseOnly).catch(() => {})
      let snapshot: SessionSnapshot | null
      try {
        snapshot = await transport.get(sessionId)
      } catch (failure) {
        throw status.failed(failure)
      }
      // No session on the server (deleted or expired): the server's word wins over an old base.
      view.rebase(snapshot ?? { sessionId, variables: {}, version: 0, createdAt: '', updatedAt: '' }, snapshot === null)
      status.synced(!sender.isBusy())
      return snapshot
    },
    sync,
    sendOnHide,
    flush,
    async run<Output>(step: string, input?: JsonValue) {
      checkRunInput(step, input)
      return runs.run<Output>(step, input)
    },
    async startRun(step, input) {
      checkRunInput(step, input)
      return runs.start(step, input)
    },
    watchRun: (runId) => runs.watch(runId),
    cancelRun: (runId) => runs.cancel(runId),
    refreshRuns: () => runs.refresh(),
    getRuns: () => runs.list(),
    subscribeRuns: (listener) => runs.subscribe(listener),
    setOnline(reported) {
      reportedOnline = reported
      // Devtools hold the page offline: the page's word is kept, and applied when they let go.
      const online = reported && !probe?.offline
      if (status.current.isOnline === online) return
      probe?.event('online', online)
      // A request sent before or during the outage may hang on a dead connection until its
      // timeout, and nothing else is sent meanwhile: give it up and send it again now (same
      // clientId and seq: the server applies it once).
      if (online) sender.abandon()
      status.set({ isOnline: online, isSyncing: sender.isSending() })
      if (online && (view.queue.length > 0 || view.pending.size > 0)) {
        // Back online: do not wait out a backoff meant for the outage.
        sender.cancelRetry()
        send()
        startToSend()
      }
    },
    persist,
    async adopt() {
      // The changes made before signing in are on the server first, then the session becomes the user's.
      await flush()
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
    attachProbe(attached) {
      probe = attached ?? undefined
      return internals
    },
  }
  /** What a probe reads (see ClientInternals). */
  const internals: ClientInternals = {
    base: () => view.base,
    pending: () => view.pending,
    queue: () => view.queue,
    isRefused: (key) => view.isRefused(key),
    isSending: () => sender.isSending(),
    localCopy: () => ({ fallback: local.isFallback(), custom: options.storage !== undefined, persistent: local.isPersistent() }),
    leftByPages: () => leftByPages,
    lock: () => ({ locks: locks !== null, held: pageLock?.isHeld() ?? false }),
    reportedOnline: () => reportedOnline,
    livePages: () => livePages(locks),
    plugins: plugins.map((plugin) => plugin.name),
    forgetLocalCopy: () => local.forget(sessionKey),
  }
  return client
}

function checkRunInput(step: string, input: JsonValue | undefined): void {
  const problem = input === undefined ? null : jsonValueProblem(input)
  if (problem) throw new TypeError(`run(${JSON.stringify(step)}): input ${problem}`)
}
