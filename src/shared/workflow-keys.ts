/**
 * How a workflow's fields are laid out as session variables. Every field is its own top-level
 * variable, so changing one field sends one key:
 *
 *   wf:{id}:v:{key}   a data field        wf:{id}:step     the current step
 *   wf:{id}:flow      the current flow    wf:{id}:params   the current flow's params
 *   wf:{id}:stack     the parent flows    wf:{id}:at       when the server last changed it
 *
 * `{id}` and `{key}` are percent-encoded (encodeURIComponent), which never leaves a `:` in
 * them, so a key splits back into exactly one (workflow, field): two workflows never collide,
 * whatever characters their ids or keys contain. Names starting with `wf:` are the workflows'.
 */
export const WORKFLOW_PREFIX = 'wf:'

const SLOTS = ['step', 'flow', 'params', 'stack', 'at'] as const

/** A workflow's own variables besides its data fields. */
export type WorkflowSlot = (typeof SLOTS)[number]

const encode = (text: string) => encodeURIComponent(text)

/** The prefix shared by every variable of workflow `id`. */
export const workflowPrefix = (id: string) => `${WORKFLOW_PREFIX}${encode(id)}:`

/** The variable that holds data field `key` of workflow `id`. */
export const workflowDataKey = (id: string, key: string) => `${workflowPrefix(id)}v:${encode(key)}`

/** The variable that holds one of workflow `id`'s own slots (step, flow, params, stack, at). */
export const workflowSlotKey = (id: string, slot: WorkflowSlot) => `${workflowPrefix(id)}${slot}`

export type ParsedKey = { workflowId: string; field: string } | { workflowId: string; slot: WorkflowSlot } | null

/** The workflow and field a variable name belongs to, or null for a plain variable. */
export function parseWorkflowKey(name: string): ParsedKey {
  if (!name.startsWith(WORKFLOW_PREFIX)) return null
  const parts = name.slice(WORKFLOW_PREFIX.length).split(':')
  try {
    if (parts.length === 3 && parts[1] === 'v') return { workflowId: decodeURIComponent(parts[0]!), field: decodeURIComponent(parts[2]!) }
    if (parts.length === 2 && (SLOTS as readonly string[]).includes(parts[1]!)) {
      return { workflowId: decodeURIComponent(parts[0]!), slot: parts[1] as WorkflowSlot }
    }
  } catch {
    // A malformed escape: not one of ours.
  }
  return null
}
