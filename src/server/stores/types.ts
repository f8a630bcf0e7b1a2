import type { JsonValue, SessionSnapshot, SessionSummary } from '../../shared/protocol.js'
import { scopeWorkflow, type SubflowFrame } from '../../shared/workflow.js'
import type { MergeLimits, SessionChange, SessionRecord } from '../merge.js'

export interface ApplyResult {
  snapshot: SessionSnapshot
  /** False when the change was empty or its `seq` was already applied. */
  applied: boolean
}

export interface ListOptions {
  /** Only this owner's sessions. */
  userId?: string
  /** Page size; default 50. */
  limit?: number
  /** How many of the newest sessions to skip. */
  offset?: number
}

export interface StoreOptions {
  /** A session not updated for this long reads as not found and is purged. Default: never. */
  ttlMs?: number
}

/**
 * Where sessions live. Every method returns copies; `apply` is atomic per session: the merge,
 * the version bump and the client's `seq` are written together or not at all.
 *
 * @example
 * const store = memoryStore()
 * await store.apply('session-1', { variables: { email: 'a@b.c' } })
 * await store.getState<string>('session-1', 'email') // → 'a@b.c'
 */
export interface SessionStore {
  /** The session, or null when there is none (or it expired). */
  get(sessionId: string): Promise<SessionSnapshot | null>
  /** Merges `change` atomically (see `mergeSession`), creating the session when missing. */
  apply(sessionId: string, change: SessionChange, limits?: MergeLimits): Promise<ApplyResult>
  /** Removes the session; true when there was one. */
  delete(sessionId: string): Promise<boolean>
  /** Sessions, newest `updatedAt` first. */
  list(options?: ListOptions): Promise<SessionSummary[]>
  /** Removes expired sessions now (stores with `ttlMs` also do it on their own); returns how many. */
  purgeExpired(): Promise<number>
  /** One variable of a session, or undefined. */
  getState<T = JsonValue>(sessionId: string, key: string): Promise<T | undefined>
  /** Sets one variable (an atomic patch of one key); returns the new snapshot. */
  setState<T = JsonValue>(sessionId: string, key: string, value: T): Promise<SessionSnapshot>
  /** One workflow's part of a session (its fields, step and subflow stack), or null without the session. */
  getWorkflow(sessionId: string, workflowId: string): Promise<WorkflowState | null>
  /** Releases files and connections; waits for writes under way. */
  close(): Promise<void>
  /**
   * Stores shared by several servers (PostgreSQL) tell of every applied change, wherever it was
   * made; the handler's change feed listens. Stores of one process leave it out.
   */
  watch?(onChange: (sessionId: string, version: number) => void): () => void
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

/** What a store implements; `defineStore` adds the helpers and expiry timer. */
export type StoreCore = Omit<SessionStore, 'getState' | 'setState' | 'getWorkflow'>

/** Adds `getState`/`setState` on top of the core methods, and purges expired sessions periodically. */
export function defineStore(core: StoreCore, options: StoreOptions = {}): SessionStore {
  let timer: ReturnType<typeof setInterval> | undefined
  if (options.ttlMs !== undefined) {
    timer = setInterval(() => void core.purgeExpired().catch(() => {}), Math.min(options.ttlMs, 10 * 60_000))
    timer.unref?.()
  }
  return {
    ...core,
    async getState<T>(sessionId: string, key: string) {
      const snapshot = await core.get(sessionId)
      return snapshot && Object.hasOwn(snapshot.variables, key) ? (snapshot.variables[key] as T) : undefined
    },
    async setState(sessionId, key, value) {
      return (await core.apply(sessionId, { variables: { [key]: value as JsonValue } })).snapshot
    },
    async getWorkflow(sessionId, workflowId) {
      const snapshot = await core.get(sessionId)
      if (!snapshot) return null
      const readOnly = () => {
        throw new Error('getWorkflow reads only: change a session with apply() or a step')
      }
      const variables = snapshot.variables
      const workflow = scopeWorkflow(
        { get: (name) => (Object.hasOwn(variables, name) ? variables[name] : undefined), set: readOnly, delete: readOnly, names: () => Object.keys(variables) },
        workflowId,
      )
      const { step, flow, stack, params, lastModified } = workflow
      return { data: workflow.getAll() as Record<string, JsonValue>, step, flow, stack, params, lastModified }
    },
    async close() {
      if (timer) clearInterval(timer)
      await core.close()
    },
  }
}

/** Whether `record` has outlived `ttlMs` at `now`. */
export function isExpired(record: SessionRecord | SessionSnapshot, ttlMs: number | undefined, now = Date.now()): boolean {
  const snapshot = 'snapshot' in record ? record.snapshot : record
  return ttlMs !== undefined && Date.parse(snapshot.updatedAt) + ttlMs <= now
}

/** The oldest `updatedAt` that is still alive, as an ISO string (for stores that query by it). */
export function expiryCutoff(ttlMs: number, now = Date.now()): string {
  return new Date(now - ttlMs).toISOString()
}

export function summarize(snapshot: SessionSnapshot): SessionSummary {
  const { variables: _variables, ...summary } = snapshot
  return summary
}

export function byNewest(a: SessionSummary, b: SessionSummary): number {
  return a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : a.sessionId < b.sessionId ? -1 : 1
}

/** Filters, sorts and pages summaries the way `list` promises (for stores without a query language). */
export function pageOf(summaries: SessionSummary[], { userId, limit = 50, offset = 0 }: ListOptions): SessionSummary[] {
  const mine = userId === undefined ? summaries : summaries.filter((summary) => summary.userId === userId)
  return mine.sort(byNewest).slice(offset, offset + limit)
}
