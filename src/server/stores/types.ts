import type { SessionBase } from '../../shared/delta.js'
import type { Migrations } from '../../shared/migrations.js'
import type { JsonValue, RunRecord, RunStatus, SessionSnapshot, SessionSummary, Variables } from '../../shared/protocol.js'
import type { SubflowFrame, Workflow } from '../../shared/workflow.js'
import type { Caller, SessionChange, SessionHead } from '../merge.js'
import type { Listed, StoredSession } from './stored.js'

export interface ApplyResult {
  /** The session after the change. Asked with `base`, read `answer`: reading this throws when the answer is a delta. */
  snapshot: SessionSnapshot
  /** False when the change was empty or its `seq` was already applied. */
  applied: boolean
  /**
   * The same snapshot as the protocol's JSON text, when the store has it at hand (the stores of
   * this package always do, and parse `snapshot` from it only when it is read). The handler
   * answers a patch with this text as it is, so a large session is not serialized again. A
   * wrapper that returns another `snapshot` than the store's must leave `json` out; the stores
   * of this package drop it themselves once `snapshot` has been read (a spread reads it).
   */
  json?: string
  /** Asked with `base`: the answer for a caller holding it (a delta from it, or the whole snapshot). */
  answer?: SessionAnswer
}

/** The session as an answer for a caller that holds `base` (docs/protocol.md, "Deltas"). */
export interface SessionAnswer {
  /** The answer as the protocol's JSON text: a delta from the base, or the whole snapshot. */
  json: string
  delta: boolean
  /** The base is the session as it is: nothing changed since (a GET answers 304). */
  current: boolean
  version: number
  createdAt: string
}

export type { Caller, SessionBase }

export interface AccessOptions {
  /**
   * Who asks, when a request asks: `{ userId: 'ada' }` for a signed-in user, `{ userId: null }`
   * for an anonymous one. A caller reaches sessions without an owner and its own, and nothing
   * else ("no such session"). Server code that leaves it out is trusted: it reaches every session.
   */
  caller?: Caller
}

export interface ApplyOptions extends AccessOptions {
  /**
   * The schema version the change was written in (a request's `schemaVersion`); default: the
   * store's. An older one is moved by the store's migrations (`schema_mismatch` when they cannot
   * move it), a newer one is `schema_mismatch`; for a run start, anything but the store's is.
   */
  schemaVersion?: number
  /** Largest size of the stored variables, in bytes of JSON; default 1 MiB. */
  maxBytes?: number
  /** The version the caller holds: the result's `answer` is then only what changed since it, when the store can tell. */
  base?: SessionBase
}

export interface CreateOptions {
  variables?: Variables
  workflowId?: string
  /** The owner: only this user's requests reach the session. */
  userId?: string
  /** Largest size of the stored variables, in bytes of JSON; default 1 MiB. */
  maxBytes?: number
}

export interface ListOptions {
  /** Only this owner's sessions. */
  userId?: string
  /** Page size, 1 to 1000; default 50. */
  limit?: number
  /** How many of the newest sessions to skip. */
  offset?: number
}

export interface StoreOptions {
  /** A session not updated for this long reads as not found and is purged (its runs with it). Default: never. */
  ttlMs?: number
  /**
   * A `running` run whose heartbeat is older than this has lost its server (killed, frozen, cut
   * off): the store ends it `lost` when it is read. Default 30 s (the server renews a heartbeat every 5 s).
   */
  runLostAfterMs?: number
  /**
   * The app's schema (`defineMigrations`): a session stored at an older schema version is
   * migrated to the current one when anything reads or writes it (once, one version bump), and
   * new sessions are written at it. Default: schema version 1, nothing to migrate.
   */
  migrations?: Migrations
  /**
   * Told of what goes wrong away from any request: the values a migration set aside because the
   * app's schema refuses them (`SetAsideError`). Default: `console.error`. Pass the handler's too.
   */
  onError?: (error: unknown, context: { sessionId: string }) => void
}

/** How a start of a run meets a run of the same step that is `running` in the session. */
export type ConcurrentRuns = 'join' | 'refuse'

export interface RunStart {
  runId: string
  step: string
  input?: JsonValue
  /** `join` (default): answer the running run of the same step; `refuse`: `run_in_progress`. */
  concurrentRuns?: ConcurrentRuns
}

/** How a run ends: with the step's output and changes (merged in the same atomic step), or without. */
export type RunEnd =
  | { status: 'succeeded'; output?: JsonValue; change?: SessionChange }
  | { status: 'failed' | 'cancelled' | 'timed_out' | 'lost'; message: string }

/** What `startRun` answers: the run, whether this call made it, and the variables the step is to read (when made). */
export interface RunStarted {
  run: RunRecord
  created: boolean
  variables: Variables | null
}

/** What `finishRun` answers: the run as it ended (by this call, or before it), and the session after its changes. */
export interface RunFinished {
  run: RunRecord
  /** False when the run had ended already (a cancel, a time limit or a loss landed first): nothing was written. */
  finished: boolean
  /** The session after a `succeeded` end. */
  session: ApplyResult | null
}

/** Told of every applied change, from any server sharing the store. */
export type ChangeListener = (sessionId: string, version: number) => void

/**
 * Where sessions live. Every method checks the session id (`invalid_session_id`), takes copies
 * of what it is given and returns copies. `apply` is atomic per session: the merge, the version
 * bump and the client's `seq` are written together or not at all.
 *
 * @example
 * const store = memoryStore()
 * await store.apply('session-1', { variables: { email: 'a@b.c' } })
 * await store.getState<string>('session-1', 'email') // → 'a@b.c'
 */
export interface SessionStore {
  /** The session, or null when there is none (or it expired, or `caller` may not see it). */
  get(sessionId: string, options?: AccessOptions): Promise<SessionSnapshot | null>
  /**
   * The session for a caller that holds version `base`: a delta from it when the store knows what
   * changed since (O(change)), else the whole snapshot; null as for `get`. Stores made by
   * `defineStore` have it; the handler answers snapshots for a store without it.
   */
  since?(sessionId: string, base: SessionBase, options?: AccessOptions): Promise<SessionAnswer | null>
  /**
   * Merges `change` atomically (see `planMerge`), creating the session when missing (owned by
   * `caller`, when one is given). A session `caller` may not reach is `not_found`.
   */
  apply(sessionId: string, change: SessionChange, options?: ApplyOptions): Promise<ApplyResult>
  /** Makes a new session (version 1); throws `exists` when the id is taken. */
  create(sessionId: string, options?: CreateOptions): Promise<SessionSnapshot>
  /**
   * Makes `userId` the owner of a session that has none (one made before its user signed in):
   * from then on only that user's requests reach it, and it is listed among theirs. A session
   * the user owns already is returned as it is; a missing one, or another user's, is `not_found`.
   * The version grows by one. Only the handler's `POST {base}/{id}/adopt` (the signed-in caller)
   * and trusted server code call it.
   */
  adopt(sessionId: string, userId: string): Promise<SessionSnapshot>
  /** Removes the session; true when there was one (that `caller` may reach). */
  delete(sessionId: string, options?: AccessOptions): Promise<boolean>
  /** Sessions, newest `updatedAt` first, one page at a time (for a UI). */
  list(options?: ListOptions): Promise<SessionSummary[]>
  /** The schema version sessions are read at (`migrations.version`, or 1); a store that leaves it out is at 1. */
  readonly schemaVersion?: number
  /** The migrations it was given: the handler moves an older page's patch with them before the app's schema checks it. */
  readonly migrations?: Migrations
  /**
   * Migrates the session now if it is stored at an older schema version (as any read would);
   * true when it did. For a job that migrates every session ahead of time: `migrateSessions`.
   */
  migrate?(sessionId: string): Promise<boolean>
  /** Every live session id, unpaged, in no particular order (for jobs: export, migration, audit). */
  ids(): AsyncIterable<string>
  /** Removes expired sessions now (stores with `ttlMs` also do it on their own); returns how many. */
  purgeExpired(): Promise<number>
  /** One variable of a session, or undefined. */
  getState<T = JsonValue>(sessionId: string, key: string): Promise<T | undefined>
  /** Sets one variable (an atomic patch of one key); returns the new snapshot. */
  setState<T = JsonValue>(sessionId: string, key: string, value: T): Promise<SessionSnapshot>
  /** One workflow's part of a session (its fields, step and subflow stack), or null without the session. */
  getWorkflow(sessionId: string, workflowId: string): Promise<WorkflowState | null>
  /**
   * Changes one workflow's part of a session from server code, as a step would: `edit` gets the
   * workflow's view (the same members as `useWorkflow`), and what it changes is merged as one
   * patch with one version bump. If another write lands between the read and the merge, `edit`
   * runs again on the newer session, so it sees every change it overwrites. Creates the session
   * when missing; returns the new snapshot.
   */
  updateWorkflow<Data extends object = Record<string, JsonValue>>(
    sessionId: string,
    workflowId: string,
    edit: (workflow: Workflow<Data>) => void | Promise<void>,
  ): Promise<SessionSnapshot>
  /**
   * Starts a run of `start.step` on the session, atomically: a run id that exists answers that
   * run (`created: false`), and so does a running run of the same step (`join`); otherwise the
   * record is written `running` and the stored variables are handed out for the step. A missing
   * session is created (empty, version 1, owned by `caller`).
   */
  startRun(sessionId: string, start: RunStart, options?: ApplyOptions): Promise<RunStarted>
  /** One run of the session, or null; a `running` one whose heartbeat is too old is ended `lost` first. */
  getRun(sessionId: string, runId: string, options?: AccessOptions): Promise<RunRecord | null>
  /** The session's runs, newest first (the running ones and the 50 newest finished ones); null without the session (or when `caller` may not reach it). */
  listRuns(sessionId: string, options?: AccessOptions): Promise<RunRecord[] | null>
  /**
   * Renews a running run's heartbeat and, with `progress`, stores its latest progress value (the
   * record's `rev` grows). Answers the record, finished when it ended meanwhile (cancelled
   * elsewhere): the runner stops then. Null when there is no such run.
   */
  touchRun(sessionId: string, runId: string, progress?: { value: JsonValue }): Promise<RunRecord | null>
  /**
   * Ends a run in one atomic step, only if it is still `running`: a `succeeded` end merges its
   * change in that same step (one version bump when anything changed). `options.caller` limits
   * who may (a cancel from a request); not found is null.
   */
  finishRun(sessionId: string, runId: string, end: RunEnd, options?: ApplyOptions): Promise<RunFinished | null>
  /** Releases files and connections; waits for writes under way. */
  close(): Promise<void>
  /**
   * Stores shared by several servers (PostgreSQL) tell of every applied change, wherever it was
   * made; the handler's change feed listens. `onReconnect` runs after the store lost and regained
   * its way of hearing changes: any session may have changed meanwhile. Stores of one process
   * leave it out.
   */
  watch?(onChange: ChangeListener, onReconnect?: () => void): () => void
}

/** What `getWorkflow` reads: the same fields a `useWorkflow` view shows. */
export interface WorkflowState {
  data: Record<string, JsonValue>
  step: string | null
  flow: string
  stack: readonly SubflowFrame[]
  params: JsonValue | null
  lastModified: string | null
}

/** The present state a merge needs: the head, and the sizes of the variables it names. */
export interface CurrentSession {
  head: SessionHead
  /** The size of a variable's entry (`entryBytes`), for the names asked; undefined when it does not exist. */
  sizeOf(name: string): number | undefined
}

/**
 * A run as a backend keeps it: the columns runs are found by, and the record as the protocol's
 * JSON (its values through the store's codec). The columns always equal the record's fields.
 */
export interface StoredRun {
  runId: string
  step: string
  status: RunStatus
  startedAt: string
  /** The record's `heartbeatAt`, in milliseconds since the epoch. */
  heartbeatAt: number
  record: string
}

/** What `update(…, runId)` reads of the session's runs, in the same atomic step. */
export interface CurrentRuns {
  /** The run of that id, if the session has it. */
  run: StoredRun | undefined
  /** The session's runs with status `running`. */
  running: readonly StoredRun[]
}

/** How many finished runs a session keeps (besides its running ones): the newest. */
export const MAX_FINISHED_RUNS = 50

/**
 * What a backend writes for one update: a new head with the variables set (name → value JSON)
 * and deleted, or `head: null` to remove the session.
 */
export interface Write {
  /** The session's new head; null removes the session (and its runs); left out, the session is not changed. */
  head?: SessionHead | null
  sets?: ReadonlyMap<string, string>
  deletes?: readonly string[]
  /**
   * Runs to write (insert or replace by run id). A backend that writes a new one also drops the
   * session's finished runs beyond the newest {@link MAX_FINISHED_RUNS}.
   */
  runs?: readonly StoredRun[]
}

/**
 * What a storage backend provides; `defineStore` builds the whole {@link SessionStore} on it
 * (ids, copies, the owner rule, the merge, workflows, encryption). One file per backend.
 */
export interface StoreBackend {
  /** Hands the live session (null when missing or expired) to `use`, synchronously: it may change after. */
  read<T>(sessionId: string, use: (stored: StoredSession | null) => T): Promise<T>
  /**
   * Atomically for this session, against every writer in every process sharing the backend:
   * reads the head and the sizes of `names`, calls `decide` (synchronously; when it throws,
   * nothing is written), writes what it returned (nothing for undefined), and hands the session
   * as it is then to `view`, synchronously. Resolves with `view`'s result once the write is durable.
   */
  update<T>(
    sessionId: string,
    names: readonly string[],
    decide: (current: CurrentSession | null, runs: CurrentRuns) => Write | undefined,
    view: (after: StoredSession | null) => T,
    /** Asks for the run of this id and the running runs in `decide`'s second argument (else it is empty). */
    runId?: string,
  ): Promise<T>
  /** The session's runs, newest `startedAt` first; with `runId`, only that one (if any). */
  runs(sessionId: string, runId?: string): Promise<StoredRun[]>
  /** Summaries of live sessions, newest first, filtered and paged (options are checked). */
  list(options: Required<Pick<ListOptions, 'limit' | 'offset'>> & Pick<ListOptions, 'userId'>): Promise<Listed[]>
  /** Every live session id. */
  ids(): AsyncIterable<string>
  purgeExpired(): Promise<number>
  close(): Promise<void>
  watch?(onChange: ChangeListener, onReconnect?: () => void): () => void
}
