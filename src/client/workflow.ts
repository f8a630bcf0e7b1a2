import type { JsonValue } from '../shared/protocol.js'
import { scopeWorkflow, type Workflow } from '../shared/workflow.js'
import type { SessionClient } from './types.js'

/**
 * The scoped view of one workflow's fields, step and subflows in `client`'s session (the hook
 * `useWorkflow` gives the same view to a component).
 *
 * @example
 * const signup = workflowOf<{ email: string }>(client, 'signup')
 * signup.set('email', 'ada@example.com')
 */
export function workflowOf<Data extends object = Record<string, JsonValue>>(client: SessionClient, workflowId: string): Workflow<Data> {
  return scopeWorkflow<Data>(
    {
      get: (name) => client.get(name),
      set: (name, value) => client.set(name, value),
      delete: (name) => client.delete(name),
      names: () => Object.keys(client.getSnapshot()),
    },
    workflowId,
  )
}
