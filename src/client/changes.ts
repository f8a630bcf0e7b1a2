import type { JsonValue, SessionPatch, Variables } from '../shared/protocol.js'

/** A local change of one variable: a new value, or its removal. */
export type Change = { value: JsonValue } | { deleted: true }

/** Changes by variable name, in the order they were made. */
export type Changes = Map<string, Change>

/** One patch as sent: its changes with the client id and sequence number it carries (the outbox is the queue of these). */
export interface NumberedPatch {
  clientId: string
  seq: number
  variables: Variables
  deleted: string[]
  workflowId?: string
  /** The schema version it was written in (absent: 1). */
  schemaVersion?: number
}

export function toPatchBody(changes: ReadonlyMap<string, Change>): Pick<NumberedPatch, 'variables' | 'deleted'> {
  const variables: Variables = {}
  const deleted: string[] = []
  for (const [key, change] of changes) {
    if ('deleted' in change) deleted.push(key)
    else variables[key] = change.value
  }
  return { variables, deleted }
}

export function fromPatchBody(patch: SessionPatch): Changes {
  const changes: Changes = new Map()
  for (const key of patch.deleted ?? []) changes.set(key, { deleted: true })
  for (const [key, value] of Object.entries(patch.variables ?? {})) changes.set(key, { value })
  return changes
}
