import type { SessionSnapshot, SessionSummary } from '../../shared/protocol.js'
import type { SessionRecord } from '../merge.js'
import type { ListOptions } from './types.js'

/** Helpers the backends share: expiry, summaries, and paging for backends without a query language. */

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

function byNewest(a: SessionSummary, b: SessionSummary): number {
  return a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : a.sessionId < b.sessionId ? -1 : 1
}

/** Filters, sorts and pages summaries the way `list` promises. */
export function pageOf(summaries: SessionSummary[], { userId, limit = 50, offset = 0 }: ListOptions): SessionSummary[] {
  const mine = userId === undefined ? summaries : summaries.filter((summary) => summary.userId === userId)
  return mine.sort(byNewest).slice(offset, offset + limit)
}
