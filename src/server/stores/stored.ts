import type { SessionSnapshot, SessionSummary } from '../../shared/protocol.js'
import { utf8Length } from '../../shared/rules.js'
import type { SessionHead } from '../merge.js'
import type { StoredRun } from './types.js'

/**
 * A session as the stores hold it: its head, and each variable as its entry of the variables
 * object, `"name":<value JSON>`, so that a snapshot is written by joining text, not by
 * serializing the session again.
 */
export interface StoredSession {
  head: SessionHead
  /** name → `"name":<value JSON>` */
  entries: Map<string, string>
  /** The names recent versions changed, for deltas; without it the session is answered whole. */
  log?: ChangeLog
}

/**
 * The names each recent version of a session changed (set or deleted), oldest first: what a
 * delta from any version since `from` carries. Bounded: the oldest versions go first.
 */
export interface ChangeLog {
  /** The log holds every change after this version. */
  from: number
  steps: Array<{ version: number; names: readonly string[] }>
  /** How many names the steps hold in all. */
  size: number
}

/** How many names a change log holds at most (the oldest versions are dropped beyond). */
const MAX_LOG_NAMES = 1024

/** A log that knows nothing before `version` (a session loaded whole). */
export const changeLogFrom = (version: number): ChangeLog => ({ from: version, steps: [], size: 0 })

/** A copy of `log` that can grow without changing it. */
export const copyLog = (log: ChangeLog): ChangeLog => ({ from: log.from, steps: [...log.steps], size: log.size })

/** A log as a file kept it, or a new one from `version` when it is missing or not a log. */
export function readLog(value: unknown, version: number): ChangeLog {
  const log = value as Partial<ChangeLog> | null | undefined
  const valid =
    typeof log?.from === 'number' &&
    typeof log.size === 'number' &&
    Array.isArray(log.steps) &&
    log.steps.every((step) => typeof step.version === 'number' && Array.isArray(step.names))
  return valid ? (log as ChangeLog) : changeLogFrom(version)
}

/** Records that `version` changed `names`. */
export function logChange(log: ChangeLog, version: number, names: readonly string[]): void {
  log.steps.push({ version, names })
  log.size += names.length
  while (log.size > MAX_LOG_NAMES || log.steps.length > MAX_LOG_NAMES) {
    const dropped = log.steps.shift()!
    log.size -= dropped.names.length
    log.from = dropped.version
  }
}

/** The names changed after `version`, or null when the log does not reach back that far. O(change). */
export function namesSince(log: ChangeLog | undefined, version: number): Set<string> | null {
  if (!log || version < log.from) return null
  const names = new Set<string>()
  for (let index = log.steps.length - 1; index >= 0 && log.steps[index]!.version > version; index--)
    for (const name of log.steps[index]!.names) names.add(name)
  return names
}

/** The entry of variable `name` holding `json`. */
export const entryOf = (name: string, json: string): string => `${JSON.stringify(name)}:${json}`

/** The value JSON inside an entry. */
export const valueOfEntry = (name: string, entry: string): string => entry.slice(JSON.stringify(name).length + 1)

/** Writes `plan` into `stored` as version `head` (and into its change log, when the version moved). */
export function applyPlan(
  stored: StoredSession,
  head: SessionHead,
  plan: { sets?: ReadonlyMap<string, string> | undefined; deletes?: readonly string[] | undefined },
): void {
  const moved = head.version !== stored.head.version
  stored.head = head
  const deletes = plan.deletes ?? []
  const sets = plan.sets ?? new Map<string, string>()
  for (const name of deletes) stored.entries.delete(name)
  for (const [name, json] of sets) stored.entries.set(name, entryOf(name, json))
  if (moved && stored.log) logChange(stored.log, head.version, [...deletes, ...sets.keys()])
}

/** A new session, empty, to write its first version into with {@link applyPlan}. */
export const emptySession = (head: SessionHead): StoredSession & { log: ChangeLog } => ({
  head: { ...head, version: 0 },
  entries: new Map(),
  log: changeLogFrom(0),
})

/** The snapshot as the protocol's JSON text, joined from the entries: O(session) copying, no serializing. */
export function snapshotText(head: SessionHead, entries: Iterable<string>): string {
  let text = `{"sessionId":${JSON.stringify(head.sessionId)},"variables":{${[...entries].join(',')}},"version":${head.version},"createdAt":"${head.createdAt}","updatedAt":"${head.updatedAt}"`
  if (head.workflowId !== undefined) text += `,"workflowId":${JSON.stringify(head.workflowId)}`
  if (head.userId !== undefined) text += `,"userId":${JSON.stringify(head.userId)}`
  if ((head.schemaVersion ?? 0) > 1) text += `,"schemaVersion":${head.schemaVersion}`
  return `${text}}`
}

/** A delta from version `base` as the protocol's JSON text, joined from the entries set since then. O(change). */
export function deltaText(head: SessionHead, base: number, entries: readonly string[], deleted: readonly string[]): string {
  let text = `{"sessionId":${JSON.stringify(head.sessionId)},"base":${base},"version":${head.version},"variables":{${entries.join(',')}},"deleted":${JSON.stringify(deleted)},"createdAt":"${head.createdAt}","updatedAt":"${head.updatedAt}"`
  if (head.workflowId !== undefined) text += `,"workflowId":${JSON.stringify(head.workflowId)}`
  if (head.userId !== undefined) text += `,"userId":${JSON.stringify(head.userId)}`
  if ((head.schemaVersion ?? 0) > 1) text += `,"schemaVersion":${head.schemaVersion}`
  return `${text}}`
}

/**
 * What a backend's `list` hands the store of a session: its summary (the head without the
 * store's bookkeeping), and the schema version it is stored at, which the store checks (to
 * migrate only the stale sessions of a page) and leaves out of the answer.
 */
export function summaryOf(head: SessionHead): Listed {
  const summary: Listed = { sessionId: head.sessionId, version: head.version, createdAt: head.createdAt, updatedAt: head.updatedAt }
  if (head.workflowId !== undefined) summary.workflowId = head.workflowId
  if (head.userId !== undefined) summary.userId = head.userId
  summary.schemaVersion = head.schemaVersion ?? 0
  return summary
}

/** A session as a backend lists it: the summary, and (when the backend knows it) the schema version it is stored at. */
export type Listed = SessionSummary & { schemaVersion?: number }

/** A session of an older format (0.1: `{ snapshot, clientSeqs }`) as a head and entries. */
export function fromSnapshotRecord(record: { snapshot: SessionSnapshot; clientSeqs: Record<string, number> }): StoredSession {
  const { variables, ...rest } = record.snapshot
  const entries = new Map(Object.entries(variables).map(([name, value]) => [name, entryOf(name, JSON.stringify(value))]))
  const head: SessionHead = { ...rest, bytes: utf8Length(JSON.stringify(variables)), clients: Object.entries(record.clientSeqs) }
  return { head, entries, log: changeLogFrom(head.version) }
}

/** A row of the runs table, as SQLite (`ws_runs`) and PostgreSQL (`{table}_runs`) hold it; the Python stores write the same. */
export interface RunRow {
  session_id: string
  run_id: string
  step: string
  status: string
  started_at: string
  /** Milliseconds since the epoch (PostgreSQL's bigint comes as text). */
  heartbeat_at: number | string
  record: string
}

export function storedRunOf(row: RunRow): StoredRun {
  return {
    runId: row.run_id,
    step: row.step,
    status: row.status as StoredRun['status'],
    startedAt: row.started_at,
    heartbeatAt: Number(row.heartbeat_at),
    record: row.record,
  }
}
