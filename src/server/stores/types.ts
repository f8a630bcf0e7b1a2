import type { SessionSnapshot, SessionSummary } from '../../shared/protocol.js'
import type { MergeLimits, SessionChange } from '../merge.js'

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

/**
 * Where sessions live. Every method returns copies; `apply` is atomic per session: the merge,
 * the version bump and the client's `seq` are written together or not at all.
 *
 * @example
 * const store = memoryStore()
 * const { snapshot } = await store.apply('session-1', { variables: { email: 'a@b.c' } })
 * await store.get('session-1') // → snapshot with version 1
 */
export interface SessionStore {
  /** The session, or null when there is none. */
  get(sessionId: string): Promise<SessionSnapshot | null>
  /** Merges `change` atomically (see `mergeSession`), creating the session when missing. */
  apply(sessionId: string, change: SessionChange, limits?: MergeLimits): Promise<ApplyResult>
  /** Removes the session; true when there was one. */
  delete(sessionId: string): Promise<boolean>
  /** Sessions, newest `updatedAt` first. */
  list(options?: ListOptions): Promise<SessionSummary[]>
  /** Releases files and connections. */
  close(): Promise<void>
}

export function summarize(snapshot: SessionSnapshot): SessionSummary {
  const { variables: _variables, ...summary } = snapshot
  return summary
}

export function byNewest(a: SessionSummary, b: SessionSummary): number {
  return a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : a.sessionId < b.sessionId ? -1 : 1
}
