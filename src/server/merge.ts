import { DEFAULT_MAX_BYTES, type Variables } from '../shared/protocol.js'
import { codePointLength, isPlainObject, isStringArray, jsonValueProblem, keyProblem, utf8Length } from '../shared/rules.js'
import { parseWorkflowKey, WORKFLOW_PREFIX, workflowSlotKey } from '../shared/workflow-keys.js'
import { SessionProtocolError } from './errors.js'

/**
 * What happens to a patch, in one place: its shape and names and values are checked
 * (`toSessionChange`, `assertValidChange`), the caller's right to the session is checked
 * (`mayReach`), and `planMerge` decides what the merge writes: the variables set and deleted,
 * the workflow stamps, the version, the client's `seq`, and the size, kept as it changes. Every
 * store runs `planMerge` inside its own atomic step on the session's head and the sizes of the
 * variables the change names, so a one-key patch costs the same on a session of ten variables
 * and of ten thousand.
 */

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

/** A session without its variables: what a store reads and writes besides them. */
export interface SessionHead {
  sessionId: string
  version: number
  createdAt: string
  updatedAt: string
  workflowId?: string
  userId?: string
  /** The variables' size as compact JSON, in UTF-8 bytes: kept as they change, never re-measured. */
  bytes: number
  /** The schema version the variables are in (docs/protocol.md, "Schema versions"); absent or 0: written before any, read as 1. */
  schemaVersion?: number
  /** The last applied `seq` of the most recent clients, oldest first (at most 256). */
  clients: Array<[clientId: string, seq: number]>
}

/** A change ready to merge: checked, and each value written as JSON text (encoded, with a codec). */
export interface PreparedChange {
  sets: Map<string, string>
  deletes: string[]
  /**
   * The names whose workflows get a new `wf:{id}:at` stamp; default: all it sets and deletes. A
   * migration changes the shape, not anyone's work: its own names stamp nothing.
   */
  stamped?: readonly string[]
  clientId?: string
  seq?: number
  workflowId?: string
}

/** What a merge writes. */
export interface MergePlan {
  head: SessionHead
  /** Variables to write: name → value as JSON text. */
  sets: Map<string, string>
  /** Variables to remove (each one exists). */
  deletes: string[]
  /** False when nothing changed: an empty change, or a `seq` already applied. Then nothing is written. */
  applied: boolean
}

export interface MergeLimits {
  /** Largest size of the stored variables, in bytes of JSON. */
  maxBytes?: number
  /** Recorded as the owner (`userId`) of a session this change creates. */
  owner?: string
}

/** How many clients' sequence numbers a session remembers (the most recent ones). */
const MAX_REMEMBERED_CLIENTS = 256

/** Who asks: a request's caller (`userId` or null), or trusted server code (undefined). */
export interface Caller {
  userId: string | null
}

/**
 * Whether `caller` may reach a session owned by `owner`: trusted server code (no caller) reaches
 * every session, a request's caller its own and those without an owner. The one owner rule.
 */
export function mayReach(session: { userId?: string }, caller: Caller | undefined): boolean {
  return caller === undefined || session.userId === undefined || session.userId === caller.userId
}

/** Bytes of `"name":json`, one entry of the variables object. */
function entryBytes(name: string, json: string): number {
  return utf8Length(JSON.stringify(name)) + 1 + utf8Length(json)
}

/**
 * The change `input` describes, built from its named fields only (`variables`, `deleted`,
 * `clientId`, `seq`, `workflowId`): anything else a body carries, such as a `userId`, is left
 * behind. Throws `invalid_patch` for a field of the wrong shape; names and values are checked by
 * {@link assertValidChange}.
 */
function toSessionChange(input: unknown): SessionChange {
  if (!isPlainObject(input)) throw invalidPatch('The patch must be a JSON object')
  const { variables, deleted, clientId, seq, workflowId } = input
  if (variables !== undefined && !isPlainObject(variables)) throw invalidPatch('"variables" must be an object')
  if (deleted !== undefined && !isStringArray(deleted)) throw invalidPatch('"deleted" must be an array of strings')
  const isName = (value: unknown) => typeof value === 'string' && value.length >= 1 && codePointLength(value) <= 128
  if (clientId !== undefined && !isName(clientId)) {
    throw invalidPatch('"clientId" must be a string of 1 to 128 characters')
  }
  if (seq !== undefined && !(typeof seq === 'number' && Number.isSafeInteger(seq) && seq >= 1))
    throw invalidPatch('"seq" must be a positive integer')
  if ((clientId === undefined) !== (seq === undefined)) throw invalidPatch('"clientId" and "seq" go together')
  if (workflowId !== undefined && !isName(workflowId)) {
    throw invalidPatch('"workflowId" must be a string of 1 to 128 characters')
  }
  const change: SessionChange = {}
  if (variables !== undefined) change.variables = variables as Variables
  if (deleted !== undefined) change.deleted = deleted
  if (clientId !== undefined) change.clientId = clientId as string
  if (seq !== undefined) change.seq = seq
  if (workflowId !== undefined) change.workflowId = workflowId as string
  return change
}

function invalidPatch(message: string): SessionProtocolError {
  return new SessionProtocolError('invalid_patch', message)
}

/**
 * Throws the protocol error for a change that breaks the naming or value rules: `invalid_key`
 * for a bad name, `invalid_patch` for a value that is not JSON (or too deep). Stores run it on
 * every change before they encode and merge it.
 */
function assertValidChange(change: Pick<SessionChange, 'variables' | 'deleted'>): void {
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

/** Changes that passed {@link validChange}: frozen, so that what was checked is what is merged. */
const checked = new WeakSet<SessionChange>()

/**
 * `input` as a change that passed every rule: its shape ({@link toSessionChange}) and its names
 * and values ({@link assertValidChange}). A change this returned is not checked again: the
 * handler checks a request's patch at the edge (before the app's schema sees it) and hands the
 * store the result, and the store checks only what it did not get that way (server code's).
 */
export function validChange(input: unknown): SessionChange {
  if (checked.has(input as SessionChange)) return input as SessionChange
  const change = toSessionChange(input)
  assertValidChange(change)
  Object.freeze(change)
  checked.add(change)
  return change
}

/** The variables whose present size a merge of `change` needs: those it names, and the stamps it writes. */
export function namesNeeded(change: PreparedChange): string[] {
  const names = new Set([...change.deletes, ...change.sets.keys()])
  for (const stamp of stampsOf(stampedNames(change))) names.add(stamp)
  return [...names]
}

/**
 * Plans `change` on a session whose head is `current` (null: no such session yet): what to
 * write, and the new head. `sizeOf(name)` is the present size of a variable's entry (see
 * {@link entryBytes}), or undefined when it does not exist; only {@link namesNeeded} are asked.
 * Pure and O(change): stores run it inside their own atomic step.
 *
 * Who may change the session is not its concern: the store checks the caller first. Throws
 * `too_large` when the result would pass `limits.maxBytes`.
 */
export function planMerge(
  current: SessionHead | null,
  sizeOf: (name: string) => number | undefined,
  sessionId: string,
  change: PreparedChange,
  now: Date,
  limits: MergeLimits = {},
): MergePlan {
  const head = current ?? emptyHead(sessionId, change, now, limits.owner)
  const lastSeq = change.clientId !== undefined ? current?.clients.find(([id]) => id === change.clientId)?.[1] : undefined
  const replayed = change.seq !== undefined && lastSeq !== undefined && change.seq <= lastSeq
  if (replayed || (change.sets.size === 0 && change.deletes.length === 0)) return { head, sets: new Map(), deletes: [], applied: false }

  // `weight` is 1 + Σ(entry + 1): the JSON size for one entry or more, with the commas.
  let weight = head.bytes === 2 ? 1 : head.bytes
  const present = new Map<string, number | undefined>()
  const sizeNow = (name: string) => (present.has(name) ? present.get(name) : sizeOf(name))
  const sets = new Map<string, string>()
  const deletes = new Set<string>()
  const set = (name: string, json: string) => {
    const before = sizeNow(name)
    if (before !== undefined) weight -= before + 1
    const after = entryBytes(name, json)
    weight += after + 1
    present.set(name, after)
    sets.set(name, json)
    deletes.delete(name)
  }
  // Deletes first: a name in both is set.
  for (const name of change.deletes) {
    const before = sizeNow(name)
    if (before === undefined) continue
    weight -= before + 1
    present.set(name, undefined)
    deletes.add(name)
  }
  for (const [name, json] of change.sets) set(name, json)
  const iso = now.toISOString()
  const stamps = stampsOf(stampedNames(change))
  if (stamps.size > 0) {
    const at = `"${iso}"` // an ISO time needs no escaping
    for (const stamp of stamps) set(stamp, at)
  }

  const bytes = Math.max(2, weight)
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BYTES
  if (bytes > maxBytes) throw new SessionProtocolError('too_large', `The session would be larger than ${maxBytes} bytes`)
  const next: SessionHead = { ...head, version: head.version + 1, updatedAt: iso, bytes, clients: rememberSeq(head.clients, change) }
  if (change.workflowId !== undefined) next.workflowId = change.workflowId
  return { head: next, sets, deletes: [...deletes], applied: true }
}

function emptyHead(sessionId: string, change: PreparedChange, now: Date, owner: string | undefined): SessionHead {
  const at = now.toISOString()
  const head: SessionHead = { sessionId, version: 0, createdAt: at, updatedAt: at, bytes: 2, clients: [] }
  if (owner !== undefined) head.userId = owner
  if (change.workflowId !== undefined) head.workflowId = change.workflowId
  return head
}

function rememberSeq(clients: SessionHead['clients'], change: PreparedChange): SessionHead['clients'] {
  if (change.clientId === undefined || change.seq === undefined) return clients
  // The newest last; forget the oldest beyond the limit.
  const next = clients.filter(([id]) => id !== change.clientId)
  next.push([change.clientId, change.seq])
  return next.length > MAX_REMEMBERED_CLIENTS ? next.slice(next.length - MAX_REMEMBERED_CLIENTS) : next
}

/** Whether a change names any workflow variable (most patches of plain variables do not: no stamps to look for). */
/** The names of `change` whose workflows are stamped: those of a workflow only (most changes touch none). */
function stampedNames(change: PreparedChange): string[] {
  const names = change.stamped ?? [...change.deletes, ...change.sets.keys()]
  return names.filter((name) => name.startsWith(WORKFLOW_PREFIX))
}

/** The `wf:{id}:at` stamps of the workflows that `names` touch: when each was last changed (its `lastModified`). */
function stampsOf(names: Iterable<string>): Set<string> {
  const stamps = new Set<string>()
  for (const name of names) {
    const parsed = parseWorkflowKey(name)
    if (parsed && !('slot' in parsed && parsed.slot === 'at')) stamps.add(workflowSlotKey(parsed.workflowId, 'at'))
  }
  return stamps
}
