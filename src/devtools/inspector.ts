import type { SessionError } from '../client/errors.js'
import type { ClientInternals, ClientProbe, FeedChange, ProbeEvent } from '../client/probe.js'
import type { SyncStatus } from '../client/status.js'
import type { LeftByPage } from '../client/tabs.js'
import type { SessionClient } from '../client/types.js'
import type { QueuedPatch } from '../client/view.js'
import { Listeners } from '../shared/listeners.js'
import type { ErrorBody, JsonValue, RunRecord } from '../shared/protocol.js'
import { utf8Length } from '../shared/rules.js'

export type { LeftByPage }

/**
 * Where a variable stands on this page: `confirmed` (the server has it, at the base's version),
 * `pending` (changed here, not yet in a patch), `queued` (in a patch waiting its turn), `sending`
 * (in the patch on its way, or waiting for its retry), `refused` (the server refused it for good:
 * still shown here, never resent).
 */
export type VariableState = 'confirmed' | 'pending' | 'queued' | 'sending' | 'refused'

export interface InspectedVariable {
  key: string
  /** What the page shows; undefined for a variable deleted here and not yet confirmed. */
  value: JsonValue | undefined
  state: VariableState
  /** For `refused`: the server's error (unknown for a refusal before the inspector was made). */
  error?: SessionError
}

/** A patch of the queue (the outbox), oldest first. */
export interface InspectedPatch {
  seq: number
  /** The page that wrote it: this one's, or a closed page's whose changes this page took over. */
  clientId: string
  keys: string[]
  /** Its body's size in UTF-8 bytes. */
  bytes: number
  /** Sends of it that failed so far. */
  attempts: number
  lastError: SessionError | null
  /** When it is sent again (ms since epoch), while it waits out a backoff. */
  nextRetryAt: number | null
  /** Its request is on its way. */
  sending: boolean
}

/** The server's change stream (`liveUpdates()`), as this page follows it. */
export interface FeedState {
  connected: boolean
  /** Connections opened so far (the first one and every reconnect). */
  connects: number
  /** The version of the last snapshot or delta it brought, and when. */
  lastEventVersion: number | null
  lastEventAt: number | null
  /** Why the last connection ended, if it failed. */
  lastError: string | null
}

/** All a devtools panel shows of one client, read at once by `inspectSession(client).inspect()`. */
export interface SessionInspection {
  at: number
  sessionId: string
  clientId: string
  endpoint: string
  status: SyncStatus
  /** The server's snapshot the view is based on (what is confirmed), or null before any. */
  base: { version: number; schemaVersion: number; createdAt: string; updatedAt: string } | null
  /** Every variable the page shows, and those deleted here but not yet confirmed, by name. */
  variables: InspectedVariable[]
  queue: InspectedPatch[]
  localCopy: {
    /** Where it is kept: `IndexedDB`, `memory` (IndexedDB refused) or `custom` (the app's `storage`). */
    storage: 'IndexedDB' | 'memory' | 'custom'
    persistent: boolean
    /** When a write of it last ended, and whether it reached the device. */
    lastWrite: { at: number; ok: boolean } | null
    /** Read at start (null: not started yet). */
    leftByPages: readonly LeftByPage[] | null
  }
  /** This page's Web Lock: held while the page lives, so other pages never take its changes over. */
  tab: { clientId: string; locks: boolean; holdsLock: boolean }
  /**
   * Null when the app does not follow the change stream (no `liveUpdates()`), or nothing of it
   * was heard yet since the inspector was made (`following` says which).
   */
  feed: FeedState | null
  /** The client was given `liveUpdates()`. */
  following: boolean
  runs: readonly RunRecord[]
  /** Requests still to be failed on purpose (`failNext`), with which status, and which requests. */
  faults: Faults
  /** `setOffline(true)` holds the client offline (whatever the browser says). */
  heldOffline: boolean
}

/** What happened, as it happens: the timeline of a devtools panel. */
export type InspectorEvent = { at: number } & (
  | { type: 'write'; key: string }
  | { type: 'send'; seq: number; keys: string[]; bytes: number; keepalive: boolean }
  | { type: 'confirmed'; seq: number; version: number }
  | { type: 'failed'; seq: number; error: SessionError; retryAt: number | null }
  | { type: 'refused'; seq: number; error: SessionError }
  | { type: 'received'; version: number }
  | { type: 'online' }
  | { type: 'offline' }
  | { type: 'saved'; ok: boolean }
  | { type: 'feed'; connected: boolean; version?: number }
  | { type: 'injected'; status: number; url: string }
  | ({ type: 'faults' } & Faults)
)

/** A client's window for devtools (`inspectSession(client)`): read what it holds, hear what happens, provoke the hard cases. */
export interface SessionInspector {
  /** What the client holds now. */
  inspect(): SessionInspection
  /** Calls `listener` with each event as it happens (nothing is recorded while nobody listens). */
  subscribe(listener: (event: InspectorEvent) => void): () => void
  /**
   * Holds the client offline (`true`): changes stay here and nothing is sent, whatever the
   * browser says. `false` lets go: the client takes the online state the browser last reported.
   */
  setOffline(offline: boolean): void
  /**
   * Makes the next `count` patches of this client (`requests: 'all'`: any of its requests, reads,
   * runs and the change stream too) fail with `status` (the protocol's JSON error), without
   * reaching the server. 0 stops.
   */
  failNext(count: number, status?: number, options?: { requests?: Faults['requests'] }): void
  /** Lets go of what was provoked: the offline hold, and the failures still to make (a panel does it as it goes). */
  release(): void
  /** The client ids of the pages open now (those holding their Web Lock), where the browser says. */
  livePages(): Promise<string[]>
  /** Deletes this device's copy of the session (its base, every page's outbox, its runs); the page keeps what it shows. */
  clearLocalCopy(): Promise<void>
}

/** The failures still to make on purpose. */
export interface Faults {
  remaining: number
  status: number
  /** Which requests they hit: `patches` (the POSTs of changes), or `all`. */
  requests: 'patches' | 'all'
}

/** What the sends of a patch met so far. */
interface Attempts {
  attempts: number
  lastError: SessionError | null
  nextRetryAt: number | null
}

const NO_ATTEMPTS: Attempts = { attempts: 0, lastError: null, nextRetryAt: null }
const inspectors = new WeakMap<SessionClient, SessionInspector>()

/**
 * The inspector of `client` (one per client, made at the first call): it attaches the client's
 * probe, and from then on keeps what a panel shows that the client itself does not need (the
 * attempts per patch, the errors of refused keys, the change stream, the failures to make).
 * Events reach listeners only while there are some; nothing is kept of them here.
 *
 * @example
 * const inspector = inspectSession(client)
 * inspector.subscribe((event) => console.log(event.type))
 * inspector.failNext(3, 503) // the next three requests fail; watch the retries
 */
export function inspectSession(client: SessionClient): SessionInspector {
  let inspector = inspectors.get(client)
  if (!inspector) inspectors.set(client, (inspector = createInspector(client)))
  return inspector
}

/** Lets go of what was provoked through `client`'s inspector, if it has one (see `release`). */
export function releaseInspector(client: SessionClient): void {
  inspectors.get(client)?.release()
}

function createInspector(client: SessionClient): SessionInspector {
  const listeners = new Listeners<[InspectorEvent]>()
  let listening = 0
  const attempts = new WeakMap<QueuedPatch, Attempts>()
  const refusedErrors = new Map<string, SessionError>()
  const faults: Faults = { remaining: 0, status: 503, requests: 'patches' }
  const patchUrl = `${client.endpoint}/${encodeURIComponent(client.sessionId)}`
  let feed: FeedState | null = null
  let lastWrite: { at: number; ok: boolean } | null = null

  const emit = (event: InspectorEvent) => listeners.notify(event)
  const summaryOf = (patch: QueuedPatch) => ({ seq: patch.body.seq, keys: [...patch.changes.keys()] })

  /** What the client tells: kept where the panel needs it later, and told to the listeners now. */
  function heard(...event: ProbeEvent): void {
    const at = Date.now()
    switch (event[0]) {
      case 'write':
        if (listening) emit({ at, type: 'write', key: event[1] })
        return
      case 'send': {
        const [, patch, keepalive] = event
        const tried = attempts.get(patch)
        if (tried) tried.nextRetryAt = null // on its way again
        if (listening) emit({ at, type: 'send', ...summaryOf(patch), bytes: bytesOf(patch.body), keepalive })
        return
      }
      case 'confirmed': {
        const [, patch, snapshot] = event
        for (const key of patch.changes.keys()) refusedErrors.delete(key)
        if (listening) emit({ at, type: 'confirmed', seq: patch.body.seq, version: snapshot.version })
        return
      }
      case 'failed': {
        const [, patch, error, retryAt] = event
        attempts.set(patch, { attempts: (attempts.get(patch)?.attempts ?? 0) + 1, lastError: error, nextRetryAt: retryAt })
        if (listening) emit({ at, type: 'failed', seq: patch.body.seq, error, retryAt })
        return
      }
      case 'refused': {
        const [, patch, error] = event
        for (const key of patch.changes.keys()) refusedErrors.set(key, error)
        if (listening) emit({ at, type: 'refused', seq: patch.body.seq, error })
        return
      }
      case 'received':
        if (listening) emit({ at, type: 'received', version: event[1].version })
        return
      case 'online':
        if (listening) emit({ at, type: event[1] ? 'online' : 'offline' })
        return
      case 'saved':
        lastWrite = { at, ok: event[1] }
        if (listening) emit({ at, type: 'saved', ok: event[1] })
        return
      case 'feed':
        feedChanged(at, event[1])
    }
  }

  function feedChanged(at: number, change: FeedChange): void {
    const now = feed ?? { connected: false, connects: 0, lastEventVersion: null, lastEventAt: null, lastError: null }
    if ('version' in change) {
      feed = { ...now, lastEventVersion: change.version, lastEventAt: at }
      if (listening) emit({ at, type: 'feed', connected: now.connected, version: change.version })
      return
    }
    feed = change.connected
      ? { ...now, connected: true, connects: now.connects + 1, lastError: null }
      : { ...now, connected: false, lastError: change.error ?? now.lastError }
    if (listening) emit({ at, type: 'feed', connected: change.connected })
  }

  function setOffline(value: boolean): void {
    offline = value
    // The page's last word again (before any, the state the client has): the client applies the hold to it, or not.
    client.setOnline(internals.reportedOnline() ?? client.getStatus().isOnline)
  }

  function failNext(count: number, status = 503, { requests = 'patches' }: { requests?: Faults['requests'] } = {}): void {
    faults.remaining = Math.max(0, Math.floor(count))
    faults.status = status
    faults.requests = requests
    if (listening) emit({ at: Date.now(), type: 'faults', ...faults })
  }

  const probe: ClientProbe = {
    event: heard,
    get offline() {
      return offline
    },
    fault(url, method) {
      if (faults.remaining <= 0) return undefined
      if (
        faults.requests === 'patches' &&
        !(method === 'POST' && new URL(url, 'http://any').pathname === new URL(patchUrl, 'http://any').pathname)
      )
        return undefined
      faults.remaining--
      const { status } = faults
      if (listening) emit({ at: Date.now(), type: 'injected', status, url })
      const body: ErrorBody = { error: { code: faultCode(status), message: `Made to fail on purpose (devtools): ${status}` } }
      return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } })
    },
  }
  let offline = false
  const internals: ClientInternals = client.attachProbe(probe)

  return {
    inspect: () => inspect(client, internals, { attempts, refusedErrors, faults, feed, lastWrite, offline }),
    subscribe(listener) {
      listening++
      const remove = listeners.add(listener)
      let removed = false
      return () => {
        if (removed) return
        removed = true
        listening--
        remove()
      }
    },
    setOffline,
    failNext,
    release() {
      if (faults.remaining > 0) failNext(0)
      if (offline) setOffline(false)
    },
    livePages: async () => [...(await internals.livePages())],
    clearLocalCopy: () => internals.forgetLocalCopy(),
  }
}

/** What the client holds now, with what the inspector kept. */
function inspect(
  client: SessionClient,
  internals: ClientInternals,
  kept: {
    attempts: WeakMap<QueuedPatch, Attempts>
    refusedErrors: Map<string, SessionError>
    faults: Faults
    feed: FeedState | null
    lastWrite: { at: number; ok: boolean } | null
    offline: boolean
  },
): SessionInspection {
  const queue = internals.queue()
  const pending = internals.pending()
  const sending = internals.isSending() ? queue[0] : undefined
  const queued = new Set(queue.flatMap((patch) => [...patch.changes.keys()]))
  // The first patch is on its way, or waits out a backoff before it goes again.
  const head = queue[0]
  const retrying = head !== undefined && (kept.attempts.get(head)?.nextRetryAt ?? 0) > Date.now()
  const inFlight = new Set((sending ?? (retrying ? head : undefined))?.changes.keys())
  const status = client.getStatus()
  // Shown, unconfirmed, or refused (a refused deletion is in neither of the others).
  const refused = [...kept.refusedErrors.keys()].filter((key) => internals.isRefused(key))
  const names = new Set([...Object.keys(client.getSnapshot()), ...status.pendingKeys, ...refused])
  const stateOf = (key: string): VariableState =>
    pending.has(key)
      ? 'pending'
      : inFlight.has(key)
        ? 'sending'
        : queued.has(key)
          ? 'queued'
          : internals.isRefused(key)
            ? 'refused'
            : 'confirmed'
  const base = internals.base()
  const copy = internals.localCopy()
  const lock = internals.lock()
  return {
    at: Date.now(),
    sessionId: client.sessionId,
    clientId: client.clientId,
    endpoint: client.endpoint,
    status,
    base: base && { version: base.version, schemaVersion: base.schemaVersion ?? 1, createdAt: base.createdAt, updatedAt: base.updatedAt },
    variables: [...names].sort().map((key) => {
      const state = stateOf(key)
      const error = state === 'refused' ? kept.refusedErrors.get(key) : undefined
      return { key, value: client.get(key), state, ...(error && { error }) }
    }),
    queue: queue.map((patch) => ({
      seq: patch.body.seq,
      clientId: patch.body.clientId,
      keys: [...patch.changes.keys()],
      bytes: bytesOf(patch.body),
      ...(kept.attempts.get(patch) ?? NO_ATTEMPTS),
      sending: patch === sending,
    })),
    localCopy: {
      storage: copy.fallback ? 'memory' : copy.custom ? 'custom' : 'IndexedDB',
      persistent: copy.persistent,
      lastWrite: kept.lastWrite,
      leftByPages: internals.leftByPages(),
    },
    tab: { clientId: client.clientId, locks: lock.locks, holdsLock: lock.held },
    feed: kept.feed,
    following: internals.plugins.includes('liveUpdates'),
    runs: client.getRuns(),
    faults: { ...kept.faults },
    heldOffline: kept.offline,
  }
}

const bytesOf = (body: unknown) => utf8Length(JSON.stringify(body))

/** The protocol's error code a server would answer with `status`. */
function faultCode(status: number): ErrorBody['error']['code'] {
  if (status === 401) return 'unauthenticated'
  if (status === 404) return 'not_found'
  if (status === 413) return 'too_large'
  return status >= 500 || status === 429 ? 'unavailable' : 'bad_request'
}
