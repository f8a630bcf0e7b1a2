/**
 * The wire contract of session protocol version 1 (docs/protocol.md), as types and constants
 * that the client and the server both use.
 */

/** A JSON value: what a session variable may hold. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

/** Session variables by name. */
export type Variables = Record<string, JsonValue>

/**
 * A session as the server stores and returns it.
 *
 * @example
 * const snapshot: SessionSnapshot = {
 *   sessionId: 'a1b2c3d4', variables: { email: 'a@b.c' }, version: 1,
 *   createdAt: '2026-11-21T04:00:00.000Z', updatedAt: '2026-11-21T04:00:00.000Z',
 * }
 */
export interface SessionSnapshot {
  sessionId: string
  variables: Variables
  /** Counts applied changes: 1 after the first, +1 per later applied patch or step. */
  version: number
  createdAt: string
  updatedAt: string
  workflowId?: string
  userId?: string
  /** Extension: the schema version the variables are in, when it is not 1 (docs/protocol.md, "Schema versions"). */
  schemaVersion?: number
}

/**
 * What changed in a session since the version a client holds (`base`): the variables set and
 * deleted since then, and the head of `version`. Applied onto the snapshot of `base`, it gives
 * the snapshot of `version` (docs/protocol.md, "Deltas").
 */
export interface SessionDelta extends Omit<SessionSnapshot, 'variables'> {
  /** The version it applies to: the client's. */
  base: number
  /** Every variable set since `base`, with its current value (and maybe others, with theirs). */
  variables: Variables
  /** Every variable deleted since `base` (and maybe some the client never had). */
  deleted: string[]
}

/** One entry of `GET {base}`: a session without its variables. */
export type SessionSummary = Omit<SessionSnapshot, 'variables'>

/**
 * The body of `POST {base}/{id}`: only the changed keys.
 *
 * @example
 * const patch: SessionPatch = { variables: { email: 'a@b.c' }, deleted: ['draft'], clientId: 'tab-1', seq: 3 }
 */
export interface SessionPatch {
  variables?: Variables
  deleted?: string[]
  clientId?: string
  seq?: number
  /** Extension: the schema version the patch was written in (absent: 1); an older one is moved by the server's migrations. */
  schemaVersion?: number
  /** Extension: recorded on the session as `workflowId`. */
  workflowId?: string
}

/** The body of a successful `POST {base}/{id}/run/{step}`. */
export interface RunResponse<Output = JsonValue> {
  output: Output
  session: SessionSnapshot
}

/** Where a run is: `running`, then exactly one of the others, for good. */
export type RunStatus = 'running' | 'succeeded' | 'failed' | 'cancelled' | 'timed_out' | 'lost'

/** A workflow run as the server keeps it (docs/protocol.md, "Runs"). */
export interface RunRecord<Output = JsonValue> {
  runId: string
  step: string
  status: RunStatus
  input: JsonValue
  /** The latest value the step reported with `progress()`, or null. */
  progress: JsonValue
  /** The step's output once `succeeded`, else null. */
  output: Output | null
  /** Why the run did not succeed: `step_failed` (the step's safe message), `cancelled`, `timed_out` or `lost`. */
  error: { code: 'step_failed' | 'cancelled' | 'timed_out' | 'lost'; message: string } | null
  startedAt: string
  finishedAt: string | null
  /** Renewed at least every 5 s while `running`; a run whose heartbeat is 30 s old has lost its server. */
  heartbeatAt: string
  /** The session version the step read. */
  readVersion: number
  /** For `succeeded`: the session version after its changes were merged; else null. */
  version: number | null
  /** Grows with every change of the record (progress, status), so a watcher asks for what is newer. */
  rev: number
}

/** The fields of a run record that never change, and those that stay null until it ends: what a {@link RunDelta} leaves out. */
type FixedRunFields = 'step' | 'input' | 'startedAt' | 'readVersion'
type EndRunFields = 'finishedAt' | 'output' | 'error' | 'version'

/**
 * A run record without what a client holding an earlier rev of it has already: the fields that
 * never change, and, while it runs, the end's (docs/protocol.md, "Deltas").
 */
export type RunDelta<Output = JsonValue> = Omit<RunRecord<Output>, FixedRunFields | EndRunFields> &
  Partial<Pick<RunRecord<Output>, EndRunFields>> & {
    /** The rev the client holds. */
    base: number
  }

/** Every answer about one run; `session` comes with a `succeeded` run (the snapshot when answered). */
export interface RunAnswer<Output = JsonValue> {
  run: RunRecord<Output>
  session?: SessionSnapshot
}

/** A run answer as it comes to a client that states its base: the run and the session may be deltas. */
export interface RunWireAnswer<Output = JsonValue> {
  run: RunRecord<Output> | RunDelta<Output>
  session?: SessionSnapshot | SessionDelta
}

/** Every error code the protocol defines. */
export type ProtocolErrorCode =
  | 'invalid_json'
  | 'invalid_patch'
  | 'invalid_key'
  | 'invalid_session_id'
  | 'unauthenticated'
  | 'forbidden_origin'
  | 'not_found'
  | 'unknown_step'
  | 'method_not_allowed'
  | 'too_large'
  | 'unsupported_media_type'
  | 'step_failed'
  | 'unavailable'
  | 'bad_request'
  | 'invalid_run'
  | 'run_in_progress'
  | 'schema_mismatch'

/** Every error response: `{ "error": { "code", "message" } }`. */
export interface ErrorBody {
  /** `schemaVersion`: with `schema_mismatch`, the server's schema version (or the session's, stored at a newer one). */
  error: { code: ProtocolErrorCode; message: string; schemaVersion?: number }
}

/** The default mount point of the session endpoints. */
export const DEFAULT_BASE = '/api/session'

/** A base path, endpoint or origin without its trailing slashes (`/api/session/` → `/api/session`): the one place they are stripped. */
export const withoutTrailingSlashes = (path: string) => path.replace(/\/+$/, '')

/** Largest request body and largest stored session, in bytes of JSON (1 MiB). */
export const DEFAULT_MAX_BYTES = 1024 * 1024

/** Longest variable name, in characters. */
export const MAX_KEY_LENGTH = 256

/** Names that would reach `Object.prototype` if merged naively. */
export const FORBIDDEN_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype'])

/** The request header by which a client says which version of the session it holds: a tag, or `0` (docs/protocol.md, "Deltas"). */
export const SESSION_BASE_HEADER = 'session-base'

/** Session ids the server accepts. */
export const SESSION_ID_PATTERN = /^[A-Za-z0-9_-]{8,128}$/
