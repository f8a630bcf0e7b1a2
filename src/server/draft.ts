import type { JsonValue, Variables } from '../shared/protocol.js'
import type { VariableAccess } from '../shared/workflow.js'

/**
 * A working copy of a session's variables that records what was changed through it: what a
 * step's `workflow(id)` and the store's `updateWorkflow` write to, before one merge.
 */
export function createDraft(variables: Readonly<Variables>) {
  const current = new Map(Object.entries(structuredClone(variables)))
  const changed = new Map<string, JsonValue | undefined>()
  const access: VariableAccess = {
    get: (name) => current.get(name),
    set: (name, value) => {
      current.set(name, value)
      changed.set(name, value)
    },
    delete: (name) => {
      current.delete(name)
      changed.set(name, undefined)
    },
    names: () => current.keys(),
  }
  /** The changes as a patch: `variables` set, `deleted` removed. */
  const changes = (): { variables: Variables; deleted: string[] } => {
    const sets: Variables = {}
    const deletes: string[] = []
    for (const [name, value] of changed) {
      if (value === undefined) deletes.push(name)
      else sets[name] = value
    }
    return { variables: sets, deleted: deletes }
  }
  return {
    access,
    changes,
    /** How many variables were changed. */
    get size() {
      return changed.size
    },
  }
}
