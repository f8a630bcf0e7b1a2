import { utf8Length } from '../../shared/rules.js'
import type { SessionHead } from '../merge.js'
import { applyPlan, changeLogFrom, emptySession, entryOf, logChange, type StoredSession } from './stored.js'
import type { CurrentRuns, CurrentSession, Write } from './types.js'

/**
 * What the SQL stores share: a session is a head row and one row per variable. A variable row
 * records the version that last wrote it, and a deleted variable stays as a row without a value
 * (a tombstone), so a process that holds a session in memory catches up by reading only the rows
 * newer than its copy. Each process keeps recently used sessions in memory (`createSessionCache`),
 * which is what makes a one-key patch O(change): the merge needs only the head and the sizes of
 * the variables it names, and the answer is joined from the cached entries.
 *
 * Tombstones are compacted (`nextCompaction`): the head counts the tombstones written since the
 * last compaction, and the write that takes the count past {@link MAX_TOMBSTONES} removes every
 * tombstone of the session and sets the head's `compacted_through` to its version. A copy at a
 * version below `compacted_through` may have missed a deletion whose tombstone is gone, so it is
 * not caught up but loaded again whole (`sessionAt`). The Python stores keep the same columns by
 * the same rule (python/src/workflow_session/stores/rows.py).
 */

/** A head row as both SQL stores read it. */
export interface HeadRow {
  id: string
  user_id: string | null
  workflow_id: string | null
  version: number | string
  created_at: string
  updated_at: string
  bytes: number | string
  clients: string
  /** A copy older than this version cannot catch up by rows: it is loaded again whole. */
  compacted_through: number | string
  /** Tombstones written since the last compaction (at least as many as the session has). */
  tombstones: number | string
  /** The head's `schemaVersion`: 0 for a row written before schema versions. */
  schema_version: number | string
}

/** A variable row: `value` is null for a variable deleted at `version`. */
export interface VariableRow {
  name: string
  value: string | null
  version?: number | string
}

export function headOf(row: HeadRow): SessionHead {
  const head: SessionHead = {
    sessionId: row.id,
    version: Number(row.version),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
    bytes: Number(row.bytes),
    clients: JSON.parse(row.clients) as SessionHead['clients'],
  }
  if (row.workflow_id !== null) head.workflowId = row.workflow_id
  if (row.user_id !== null) head.userId = row.user_id
  if (Number(row.schema_version) > 0) head.schemaVersion = Number(row.schema_version)
  return head
}

/**
 * Tombstones a session keeps at most: the write that takes its count past this removes them all.
 * The same in the Python stores (`MAX_TOMBSTONES` in python/src/workflow_session/stores/rows.py).
 */
export const MAX_TOMBSTONES = 1000

/** A head's compaction columns. */
export interface Compaction {
  /** A copy at a version below this may have missed a deletion: it is loaded again whole. */
  compactedThrough: number
  /** Tombstones written since the last compaction: at least the number of the session's tombstone rows. */
  tombstones: number
}

export const compactionOf = (row: HeadRow): Compaction => ({
  compactedThrough: Number(row.compacted_through),
  tombstones: Number(row.tombstones),
})

/**
 * The compaction columns after a write of `version` that writes `written` tombstones, on a
 * session whose columns were `before` (null: the write makes the session anew, so no copy of an
 * earlier version is of this session), and whether the write removes every tombstone of the
 * session (`compact`: after its own rows, in its transaction). O(1): no row is read.
 */
export function nextCompaction(before: Compaction | null, version: number, written: number): Compaction & { compact: boolean } {
  const tombstones = (before?.tombstones ?? 0) + written
  if (tombstones > MAX_TOMBSTONES) return { compactedThrough: version, tombstones: 0, compact: true }
  return { compactedThrough: before ? before.compactedThrough : version, tombstones, compact: false }
}

/** The head's columns in the order both stores write them. */
export const headColumns = (head: SessionHead) =>
  [
    head.sessionId,
    head.userId ?? null,
    head.workflowId ?? null,
    head.version,
    head.createdAt,
    head.updatedAt,
    head.bytes,
    JSON.stringify(head.clients),
    head.schemaVersion ?? 0,
  ] as const

/** Sessions this process holds in memory, most recently used last, within a budget of bytes. */
export function createSessionCache(maxBytes = 64 * 1024 * 1024) {
  const sessions = new Map<string, StoredSession>()
  let total = 0
  const drop = (sessionId: string) => {
    const stored = sessions.get(sessionId)
    if (!stored) return
    total -= stored.head.bytes
    sessions.delete(sessionId)
  }
  return {
    get(sessionId: string): StoredSession | undefined {
      const stored = sessions.get(sessionId)
      if (stored) {
        sessions.delete(sessionId)
        sessions.set(sessionId, stored)
      }
      return stored
    },
    /** Keeps `stored` (its head already the latest); evicts the least recently used beyond the budget. */
    keep(stored: StoredSession): void {
      drop(stored.head.sessionId)
      sessions.set(stored.head.sessionId, stored)
      total += stored.head.bytes
      for (const [sessionId] of sessions) {
        if (total <= maxBytes || sessions.size <= 1) break
        drop(sessionId)
      }
    },
    drop,
    clear(): void {
      sessions.clear()
      total = 0
    },
  }
}

export type SessionCache = ReturnType<typeof createSessionCache>

/**
 * The session as of `head`: the cached copy brought up to date with `rows` (the variable rows
 * newer than the copy, tombstones included), or, without a copy or with one older than
 * `compactedThrough` (its deletions' tombstones may be gone), built from `rows` (every live row).
 * `loadRows(since)` reads the rows newer than `since` (-1: all), in the same snapshot as `head`.
 */
export function sessionAt(
  cache: SessionCache,
  head: SessionHead,
  compactedThrough: number,
  loadRows: (since: number) => VariableRow[],
): StoredSession
export function sessionAt(
  cache: SessionCache,
  head: SessionHead,
  compactedThrough: number,
  loadRows: (since: number) => Promise<VariableRow[]>,
): Promise<StoredSession>
export function sessionAt(
  cache: SessionCache,
  head: SessionHead,
  compactedThrough: number,
  loadRows: (since: number) => VariableRow[] | Promise<VariableRow[]>,
): StoredSession | Promise<StoredSession> {
  const cached = cache.get(head.sessionId)
  if (cached && cached.head.version === head.version) return cached
  // A copy newer than the database (another process deleted and re-made the session), or older
  // than the last compaction: start over.
  const base =
    cached && cached.head.version < head.version && cached.head.createdAt === head.createdAt && cached.head.version >= compactedThrough
      ? cached
      : undefined
  const rows = loadRows(base ? base.head.version : -1)
  const finish = (loaded: VariableRow[]) => {
    const stored: StoredSession = base ?? { head, entries: new Map(), log: changeLogFrom(head.version) }
    for (const row of loaded) {
      if (row.value === null) stored.entries.delete(row.name)
      else stored.entries.set(row.name, entryOf(row.name, row.value))
    }
    // Caught up: the rows newer than the copy are what changed since its version.
    if (base?.log && base.head.version < head.version)
      logChange(
        base.log,
        head.version,
        loaded.map((row) => row.name),
      )
    stored.head = head
    cache.keep(stored)
    return stored
  }
  return Array.isArray(rows) ? finish(rows) : rows.then(finish)
}

/** One write waiting in a SQL store's queue: what `update` was given, and how to answer it. */
export interface WriteJob {
  decide: (current: CurrentSession | null, runs: CurrentRuns) => Write | undefined
  /** The run `decide` is to see (with the running ones). */
  runId?: string
  view: (after: StoredSession | null) => unknown
  resolve: (value: unknown) => void
  reject: (error: unknown) => void
  result?: unknown
  error?: unknown
}

/** What `decide` sees of a session held in memory. */
export const currentOf = (stored: StoredSession | null): CurrentSession | null =>
  stored && { head: stored.head, sizeOf: (name) => sizeOfEntry(stored.entries.get(name)) }

const sizeOfEntry = (entry: string | undefined) => (entry === undefined ? undefined : utf8Length(entry))

/** Applies `write` to the copy in memory, as the database will have it after the write. */
export function afterWrite(cache: SessionCache, sessionId: string, stored: StoredSession | null, write: Write): StoredSession | null {
  if (write.head === null) {
    cache.drop(sessionId)
    return null
  }
  if (write.head === undefined) return stored
  const next = stored ?? emptySession(write.head)
  applyPlan(next, write.head, write)
  cache.keep(next)
  return next
}
