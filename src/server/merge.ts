import { DEFAULT_MAX_BYTES, type SessionSnapshot, type Variables } from '../shared/protocol.js'
import { codePointLength, isPlainObject, isStringArray, jsonValueProblem, keyProblem } from '../shared/rules.js'
import { parseWorkflowKey, workflowSlotKey } from '../shared/workflow-keys.js'
import { SessionProtocolError } from './errors.js'

/** One change to apply to a session: a patch from a client, or the result of a step. */
export interface SessionChange {
  variables?: Variables
  deleted?: string[]
  /** With `seq`: the change is applied once per (session, clientId, seq). */
  clientId?: string
  seq?: number
  /** Recorded on the session when given. */
  workflowId?: string
}

/** What a store keeps per session: the snapshot and the last applied `seq` of each client. */
export interface SessionRecord {
  snapshot: SessionSnapshot
  clientSeqs: Record<string, number>
}

export interface MergeLimits {
  /** Largest size of the stored variables, in bytes of JSON. */
  maxBytes?: number
  /** Recorded as the owner (`userId`) of a session this change creates. */
  owner?: string
}

export interface MergeResult {
  record: SessionRecord
  /** False when nothing changed: an empty change, or a `seq` already applied. */
  applied: boolean
}

/** How many clients' sequence numbers a session remembers (the most recent ones). */
export const MAX_REMEMBERED_CLIENTS = 256

const encoder = new TextEncoder()

/** Size of `variables` as UTF-8 JSON, in bytes. */
export function jsonBytes(value: unknown): number {
  return encoder.encode(JSON.stringify(value)).byteLength
}

/**
 * The change `input` describes, built from its named fields only (`variables`, `deleted`,
 * `clientId`, `seq`, `workflowId`): anything else a body carries, such as a `userId`, is left
 * behind. Throws `invalid_patch` for a field of the wrong shape; names and values are checked by
 * {@link assertValidChange}.
 */
export function toSessionChange(input: unknown): SessionChange {
  if (!isPlainObject(input)) throw invalidPatch('The patch must be a JSON object')
  const { variables, deleted, clientId, seq, workflowId } = input
  if (variables !== undefined && !isPlainObject(variables)) throw invalidPatch('"variables" must be an object')
  if (deleted !== undefined && !isStringArray(deleted)) throw invalidPatch('"deleted" must be an array of strings')
  const isName = (value: unknown) => typeof value === 'string' && value.length >= 1 && codePointLength(value) <= 128
  if (clientId !== undefined && !isName(clientId)) {
    throw invalidPatch('"clientId" must be a string of 1 to 128 characters')
  }
  if (seq !== undefined && !(typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1)) throw invalidPatch('"seq" must be a positive integer')
  if ((clientId === undefined) !== (seq === undefined)) throw invalidPatch('"clientId" and "seq" go together')
  if (workflowId !== undefined && !isName(workflowId)) {
    throw invalidPatch('"workflowId" must be a string of 1 to 128 characters')
  }
  const change: SessionChange = {}
  if (variables !== undefined) change.variables = variables as Variables
  if (deleted !== undefined) change.deleted = deleted
  if (clientId !== undefined) change.clientId = clientId as string
  if (seq !== undefined) change.seq = seq as number
  if (workflowId !== undefined) change.workflowId = workflowId as string
  return change
}

function invalidPatch(message: string): SessionProtocolError {
  return new SessionProtocolError('invalid_patch', message)
}

/**
 * Throws the protocol error for a change that breaks the naming or value rules: `invalid_key`
 * for a bad name, `invalid_patch` for a value that is not JSON (or too deep). `mergeSession`
 * runs it; a store wrapper that transforms values before the merge (encryption) runs it first.
 */
export function assertValidChange(change: Pick<SessionChange, 'variables' | 'deleted'>): void {
  for (const [key, value] of Object.entries(change.variables ?? {})) {
    const problem = keyProblem(key)
    if (problem) throw new SessionProtocolError('invalid_key', problem)
    const valueProblem = jsonValueProblem(value)
    if (valueProblem) throw new SessionProtocolError('invalid_patch', `variable "${key}": ${valueProblem}`)
  }
  for (const key of change.deleted ?? []) {
    const problem = keyProblem(key)
    if (problem) throw new SessionProtocolError('invalid_key', problem)
  }
}

/**
 * Applies `change` to `current` (null: no such session yet) and returns the new record, or the
 * current one when the change is empty or already applied. Pure: every store calls it inside
 * its own atomic operation, so all stores merge the same way.
 *
 * Who may change the session is not its concern: the store checks the caller first.
 *
 * Throws a {@link SessionProtocolError}: `invalid_key` / `invalid_patch` for a bad name or value,
 * `too_large` when the result is over the limit.
 */
export function mergeSession(
  current: SessionRecord | null,
  sessionId: string,
  change: SessionChange,
  now: Date,
  limits: MergeLimits = {},
): MergeResult {
  assertValidChange(change)
  const sets = Object.entries(change.variables ?? {})
  const deletes = change.deleted ?? []

  const lastSeq = change.clientId !== undefined ? current?.clientSeqs[change.clientId] : undefined
  const replayed = change.seq !== undefined && lastSeq !== undefined && change.seq <= lastSeq
  if (replayed || (sets.length === 0 && deletes.length === 0)) {
    return { record: current ?? emptyRecord(sessionId, change, now, limits.owner), applied: false }
  }

  const variables: Variables = { ...current?.snapshot.variables }
  for (const key of deletes) delete variables[key]
  for (const [key, value] of sets) variables[key] = value
  stampWorkflows(variables, [...deletes, ...sets.map(([key]) => key)], now)
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES
  if (jsonBytes(variables) > maxBytes) {
    throw new SessionProtocolError('too_large', `The session would be larger than ${maxBytes} bytes`)
  }

  const base = current ?? emptyRecord(sessionId, change, now, limits.owner)
  const snapshot: SessionSnapshot = {
    ...base.snapshot,
    variables,
    version: base.snapshot.version + 1,
    updatedAt: now.toISOString(),
  }
  if (change.workflowId !== undefined) snapshot.workflowId = change.workflowId
  return { record: { snapshot, clientSeqs: rememberSeq(base.clientSeqs, change) }, applied: true }
}

function emptyRecord(sessionId: string, change: SessionChange, now: Date, owner: string | undefined): SessionRecord {
  const at = now.toISOString()
  const snapshot: SessionSnapshot = { sessionId, variables: {}, version: 0, createdAt: at, updatedAt: at }
  if (owner !== undefined) snapshot.userId = owner
  if (change.workflowId !== undefined) snapshot.workflowId = change.workflowId
  return { snapshot, clientSeqs: {} }
}

function rememberSeq(clientSeqs: Record<string, number>, change: SessionChange): Record<string, number> {
  if (change.clientId === undefined || change.seq === undefined) return clientSeqs
  const next = { ...clientSeqs }
  // Re-insert so that key order is recency order, then forget the oldest clients.
  delete next[change.clientId]
  next[change.clientId] = change.seq
  const ids = Object.keys(next)
  for (let i = 0; i < ids.length - MAX_REMEMBERED_CLIENTS; i++) delete next[ids[i]!]
  return next
}

/** Records when each workflow a change touched was last changed (its `lastModified`), in the same merge. */
function stampWorkflows(variables: Variables, keys: string[], now: Date): void {
  const touched = new Set<string>()
  for (const key of keys) {
    const parsed = parseWorkflowKey(key)
    if (parsed && !('slot' in parsed && parsed.slot === 'at')) touched.add(parsed.workflowId)
  }
  for (const workflowId of touched) variables[workflowSlotKey(workflowId, 'at')] = now.toISOString()
}
