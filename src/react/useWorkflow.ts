'use client'

import { useCallback, useMemo, useRef } from 'react'
import { workflowOf } from '../client/workflow.js'
import type { JsonValue } from '../shared/protocol.js'
import type { Workflow } from '../shared/workflow.js'
import { useSessionClient } from './context.js'
import { useTracked } from './useTracked.js'

/**
 * One workflow's scoped view of the session: its fields, current step and subflow stack. Each
 * field is its own session variable, so setting one sends one key, and the component renders
 * again only when something it read changed (`get('email')` → only `email`; `getAll()` → any
 * field of this workflow; `step` → the step).
 *
 * @example
 * const signup = useWorkflow<{ email: string; plan: 'free' | 'pro' }>('signup')
 * <input value={signup.get('email', '')} onChange={(event) => signup.set('email', event.target.value)} />
 * <button onClick={() => signup.setStep('plan')}>Next</button>
 */
export function useWorkflow<Data extends object = Record<string, JsonValue>>(workflowId: string): Workflow<Data> {
  const client = useSessionClient()
  const workflow = useMemo(() => workflowOf<Data>(client, workflowId), [client, workflowId])
  const subscribe = useCallback((onChange: () => void) => client.subscribe(onChange), [client])
  const { version, track } = useTracked(subscribe)
  // getAll() builds a new object: keep the last one while its fields are the same values.
  const lastAll = useRef<Partial<Data>>({})
  const stableAll = useCallback(() => {
    const all = workflow.getAll()
    const [now, before] = [all as Record<string, unknown>, lastAll.current as Record<string, unknown>]
    const keys = Object.keys(now)
    const same = keys.length === Object.keys(before).length && keys.every((key) => Object.is(now[key], before[key]))
    const previous = lastAll.current
    return same ? previous : (lastAll.current = all)
  }, [workflow])

  return useMemo<Workflow<Data>>(
    () =>
      ({
        id: workflowId,
        get: (key: string, defaultValue?: unknown) => {
          const value = track(`field:${key}`, () => workflow.get(key as keyof Data & string))
          return value === undefined ? defaultValue : value
        },
        has: (key: string) => track(`field:${key}`, () => workflow.get(key as keyof Data & string)) !== undefined,
        getAll: () => track('all', stableAll),
        get step() {
          return track('step', () => workflow.step)
        },
        get flow() {
          return track('flow', () => workflow.flow)
        },
        get stack() {
          return track('stack', () => workflow.stack)
        },
        get params() {
          return track('params', () => workflow.params)
        },
        get lastModified() {
          return track('lastModified', () => workflow.lastModified)
        },
        set: workflow.set,
        delete: workflow.delete,
        clear: workflow.clear,
        setStep: workflow.setStep,
        enterSubflow: workflow.enterSubflow,
        exitSubflow: workflow.exitSubflow,
      }) as Workflow<Data>,
    // A new object whenever what this component read changed.
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `version` is what makes that new object
    [workflowId, workflow, track, stableAll, version],
  )
}
