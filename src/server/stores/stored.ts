import type { JsonValue, SessionSnapshot, SessionSummary, Variables } from '../../shared/protocol.js'
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
}

/** The entry of variable `name` holding `json`. */
export const entryOf = (name: string, json: string): string => `${JSON.stringify(name)}:${json}`

/** The value JSON inside an entry. */
export const valueOfEntry = (name: string, entry: string): string => entry.slice(JSON.stringify(name).length + 1)

/** Writes `plan` into `entries` (after the plan's head is taken). */
export function applyPlan(entries: Map<string, string>, plan: { sets: ReadonlyMap<string, string>; deletes: readonly string[] }): void {
  for (const name of plan.deletes) entries.delete(name)
  for (const [name, json] of plan.sets) entries.set(name, entryOf(name, json))
}

/** The snapshot as the protocol's JSON text, joined from the entries: O(session) copying, no serializing. */
export function snapshotText(head: SessionHead, entries: Iterable<string>): string {
  let text = `{"sessionId":${JSON.stringify(head.sessionId)},"variables":{${[...entries].join(',')}},"version":${head.version},"createdAt":"${head.createdAt}","updatedAt":"${head.updatedAt}"`
  if (head.workflowId !== undefined) text += `,"workflowId":${JSON.stringify(head.workflowId)}`
  if (head.userId !== undefined) text += `,"userId":${JSON.stringify(head.userId)}`
  return `${text}}`
}

/** The snapshot as an object (its values parsed: a copy nobody else holds). */
export function snapshotOf(head: SessionHead, variables: Variables): SessionSnapshot {
  return { ...summaryOf(head), variables }
}

/** The variables of `entries`, parsed. */
export function variablesOf(entries: Iterable<[string, string]>): Variables {
  const variables: Variables = {}
  for (const [name, entry] of entries) variables[name] = JSON.parse(valueOfEntry(name, entry)) as JsonValue
  return variables
}

/** What `list` shows of a session: its head without the store's bookkeeping. */
export function summaryOf(head: SessionHead): SessionSummary {
  const summary: SessionSummary = { sessionId: head.sessionId, version: head.version, createdAt: head.createdAt, updatedAt: head.updatedAt }
  if (head.workflowId !== undefined) summary.workflowId = head.workflowId
  if (head.userId !== undefined) summary.userId = head.userId
  return summary
}

/** A session of an older format (0.1: `{ snapshot, clientSeqs }`) as a head and entries. */
export function fromSnapshotRecord(record: { snapshot: SessionSnapshot; clientSeqs: Record<string, number> }): StoredSession {
  const { variables, ...rest } = record.snapshot
  const entries = new Map(Object.entries(variables).map(([name, value]) => [name, entryOf(name, JSON.stringify(value))]))
  const head: SessionHead = { ...rest, bytes: utf8Length(JSON.stringify(variables)), clients: Object.entries(record.clientSeqs) }
  return { head, entries }
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
