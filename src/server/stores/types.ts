import type { JsonValue, SessionSnapshot, SessionSummary, Variables } from '../../shared/protocol.js'
import type { SubflowFrame, Workflow } from '../../shared/workflow.js'
import type { Caller, SessionChange, SessionHead } from '../merge.js'
import type { StoredSession } from './stored.js'

export interface ApplyResult {
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
}

export type { Caller }

export interface AccessOptions {
  /**
   * Who asks, when a request asks: `{ userId: 'ada' }` for a signed-in user, `{ userId: null }`
   * for an anonymous one. A caller reaches sessions without an owner and its own, and nothing
   * else ("no such session"). Server code that leaves it out is trusted: it reaches every session.
   */
  caller?: Caller
}

export interface ApplyOptions extends AccessOptions {
  /** Largest size of the stored variables, in bytes of JSON; default 1 MiB. */
  maxBytes?: number
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
  /** A session not updated for this long reads as not found and is purged. Default: never. */
  ttlMs?: number
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
 * What a backend writes for one update: a new head with the variables set (name → value JSON)
 * and deleted, or `head: null` to remove the session.
 */
export interface Write {
  head: SessionHead | null
  sets?: ReadonlyMap<string, string>
  deletes?: readonly string[]
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
    decide: (current: CurrentSession | null) => Write | undefined,
    view: (after: StoredSession | null) => T,
  ): Promise<T>
  /** Summaries of live sessions, newest first, filtered and paged (options are checked). */
  list(options: Required<Pick<ListOptions, 'limit' | 'offset'>> & Pick<ListOptions, 'userId'>): Promise<SessionSummary[]>
  /** Every live session id. */
  ids(): AsyncIterable<string>
  purgeExpired(): Promise<number>
  close(): Promise<void>
  watch?(onChange: ChangeListener, onReconnect?: () => void): () => void
}
