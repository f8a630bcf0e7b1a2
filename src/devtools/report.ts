import type { SessionError } from '../client/errors.js'
import type { SyncStatus } from '../client/status.js'
import type { JsonValue, RunRecord } from '../shared/protocol.js'
import { utf8Length } from '../shared/rules.js'
import type { InspectedPatch, InspectorEvent, LeftByPage, SessionInspection, VariableState } from './inspector.js'

/** What a report says it is, so a reader knows how to read it. */
const REPORT_FORMAT = 'workflow-session-devtools-report'

/** How many of the last events a report carries. */
const REPORT_EVENTS = 100

/** A value told without its content: its type and size. */
type ValueDescription =
  | { type: 'string'; bytes: number }
  | { type: 'object'; keys: number; bytes: number }
  | { type: 'array'; length: number; bytes: number }
  | { type: 'number' }
  | { type: 'boolean' }
  | { type: 'null' }

/** A value in a report: itself with `values: true`, else its description. */
type ReportedValue = JsonValue | ValueDescription

interface ReportedError {
  code: string
  message: string
  status: number | null
}

/** An event in a report: its times as ISO strings, its error as code, message and status. */
type ReportedEvent = InspectorEvent extends infer Event
  ? Event extends InspectorEvent
    ? {
        [K in keyof Event]: K extends 'at'
          ? string
          : K extends 'retryAt'
            ? string | null
            : Event[K] extends SessionError
              ? ReportedError
              : Event[K]
      }
    : never
  : never

/** What "Copy report" copies: all a devtools panel shows, as plain JSON, with values replaced by their descriptions unless asked. */
export interface DevtoolsReport {
  format: typeof REPORT_FORMAT
  formatVersion: 1
  at: string
  /** Whether variable values, run inputs, progress and outputs are in it (else described). */
  values: boolean
  sessionId: string
  clientId: string
  endpoint: string
  status: Omit<SyncStatus, 'error' | 'lastSyncedAt'> & { lastSyncedAt: string | null; error: ReportedError | null }
  base: SessionInspection['base']
  variables: Array<{ key: string; state: VariableState; value?: ReportedValue; deleted?: true; error?: ReportedError }>
  queue: Array<Omit<InspectedPatch, 'lastError' | 'nextRetryAt'> & { lastError: ReportedError | null; nextRetryAt: string | null }>
  localCopy: {
    storage: SessionInspection['localCopy']['storage']
    persistent: boolean
    lastWrite: { at: string; ok: boolean } | null
    leftByPages: LeftByPage[] | null
  }
  tab: SessionInspection['tab']
  feed: (Omit<NonNullable<SessionInspection['feed']>, 'lastEventAt'> & { lastEventAt: string | null }) | null
  /** The client was given `liveUpdates()` (a null `feed` then means nothing was heard of it yet). */
  following: boolean
  runs: Array<
    Omit<RunRecord, 'input' | 'progress' | 'output'> & { input: ReportedValue; progress: ReportedValue; output: ReportedValue | null }
  >
  faults: SessionInspection['faults']
  /** The last events, oldest first (names of variables, never their values). */
  events: ReportedEvent[]
}

/**
 * The report of one inspection and the events heard so far: a plain object to copy into a bug
 * report. No value leaves unless `options.values`: each is replaced by its type and size.
 */
export function devtoolsReport(
  inspection: SessionInspection,
  events: readonly InspectorEvent[],
  options: { values: boolean },
): DevtoolsReport {
  const shown = (value: JsonValue): ReportedValue => (options.values ? value : describeValue(value))
  const { status, localCopy, feed } = inspection
  return {
    format: REPORT_FORMAT,
    formatVersion: 1,
    at: iso(inspection.at),
    values: options.values,
    sessionId: inspection.sessionId,
    clientId: inspection.clientId,
    endpoint: inspection.endpoint,
    status: { ...status, lastSyncedAt: isoOrNull(status.lastSyncedAt), error: status.error && reportError(status.error, options.values) },
    base: inspection.base && { ...inspection.base },
    variables: inspection.variables.map(({ key, state, value, error }) => ({
      key,
      state,
      ...(value === undefined ? { deleted: true as const } : { value: shown(value) }),
      ...(error && { error: reportError(error, options.values) }),
    })),
    queue: inspection.queue.map((patch) => ({
      seq: patch.seq,
      clientId: patch.clientId,
      keys: [...patch.keys],
      bytes: patch.bytes,
      attempts: patch.attempts,
      lastError: patch.lastError && reportError(patch.lastError, options.values),
      nextRetryAt: isoOrNull(patch.nextRetryAt),
      sending: patch.sending,
    })),
    localCopy: {
      storage: localCopy.storage,
      persistent: localCopy.persistent,
      lastWrite: localCopy.lastWrite && { at: iso(localCopy.lastWrite.at), ok: localCopy.lastWrite.ok },
      leftByPages: localCopy.leftByPages && localCopy.leftByPages.map((left) => ({ ...left })),
    },
    tab: { ...inspection.tab },
    feed: feed && {
      ...feed,
      lastEventAt: isoOrNull(feed.lastEventAt),
      lastError: feed.lastError === null || options.values ? feed.lastError : LEFT_OUT,
    },
    following: inspection.following,
    runs: inspection.runs.map((run) => ({
      runId: run.runId,
      step: run.step,
      status: run.status,
      startedAt: run.startedAt,
      finishedAt: run.finishedAt,
      heartbeatAt: run.heartbeatAt,
      readVersion: run.readVersion,
      version: run.version,
      rev: run.rev,
      error: run.error && { code: run.error.code, message: options.values ? run.error.message : LEFT_OUT },
      input: shown(run.input),
      progress: shown(run.progress),
      output: run.output === null ? null : shown(run.output),
    })),
    faults: { ...inspection.faults },
    events: events.slice(-REPORT_EVENTS).map((event) => reportEvent(event, options.values)),
  }
}

/** A value's type and size, without its content. */
export function describeValue(value: JsonValue): ValueDescription {
  if (value === null) return { type: 'null' }
  if (Array.isArray(value)) return { type: 'array', length: value.length, bytes: utf8Length(JSON.stringify(value)) }
  if (typeof value === 'string') return { type: 'string', bytes: utf8Length(value) }
  if (typeof value === 'number') return { type: 'number' }
  if (typeof value === 'boolean') return { type: 'boolean' }
  return { type: 'object', keys: Object.keys(value).length, bytes: utf8Length(JSON.stringify(value)) }
}

const iso = (at: number) => new Date(at).toISOString()
const isoOrNull = (at: number | null) => (at === null ? null : iso(at))

/** What stands for a message left out: an error's words may repeat a value (a schema's "was …", a step's input). */
const LEFT_OUT = '(left out: it may repeat a value; tick "include values")'

const reportError = (error: SessionError, values: boolean): ReportedError => ({
  code: error.code,
  message: values ? error.message : LEFT_OUT,
  status: error.status ?? null,
})

/** An event field by field (a field added to an event later is left out until it is named here: no value slips in). */
function reportEvent(event: InspectorEvent, values: boolean): ReportedEvent {
  const at = iso(event.at)
  switch (event.type) {
    case 'write':
      return { at, type: event.type, key: event.key }
    case 'send':
      return { at, type: event.type, seq: event.seq, keys: [...event.keys], bytes: event.bytes, keepalive: event.keepalive }
    case 'confirmed':
      return { at, type: event.type, seq: event.seq, version: event.version }
    case 'failed':
      return { at, type: event.type, seq: event.seq, error: reportError(event.error, values), retryAt: isoOrNull(event.retryAt) }
    case 'refused':
      return { at, type: event.type, seq: event.seq, error: reportError(event.error, values) }
    case 'received':
      return { at, type: event.type, version: event.version }
    case 'online':
    case 'offline':
      return { at, type: event.type }
    case 'saved':
      return { at, type: event.type, ok: event.ok }
    case 'feed':
      return { at, type: event.type, connected: event.connected, ...(event.version !== undefined && { version: event.version }) }
    case 'injected':
      return { at, type: event.type, status: event.status, url: event.url }
    case 'faults':
      return { at, type: event.type, remaining: event.remaining, status: event.status, requests: event.requests }
  }
}
