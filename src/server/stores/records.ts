import type { SessionSummary } from '../../shared/protocol.js'
import type { ListOptions } from './types.js'

/** Helpers the backends share: expiry, summaries, and paging for backends without a query language. */

/** Whether a session last updated at `head.updatedAt` has outlived `ttlMs` at `now`. */
export function isExpired(head: { updatedAt: string }, ttlMs: number | undefined, now = Date.now()): boolean {
  return ttlMs !== undefined && Date.parse(head.updatedAt) + ttlMs <= now
}

/** The oldest `updatedAt` that is still alive, as an ISO string (for stores that query by it). */
export function expiryCutoff(ttlMs: number, now = Date.now()): string {
  return new Date(now - ttlMs).toISOString()
}

function byNewest(a: SessionSummary, b: SessionSummary): number {
  return a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : a.sessionId < b.sessionId ? -1 : 1
}

/** Filters, sorts and pages summaries the way `list` promises. */
export function pageOf(summaries: SessionSummary[], { userId, limit = 50, offset = 0 }: ListOptions): SessionSummary[] {
  const mine = userId === undefined ? summaries : summaries.filter((summary) => summary.userId === userId)
  return mine.sort(byNewest).slice(offset, offset + limit)
}
