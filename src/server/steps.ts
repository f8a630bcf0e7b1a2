import { defineMigrations, type Migrations } from '../shared/migrations.js'
import type { JsonValue, Variables } from '../shared/protocol.js'
import { deepFreeze, isPlainObject, isStringArray, jsonValueProblem } from '../shared/rules.js'
import { scopeWorkflow, type Workflow } from '../shared/workflow.js'
import { createDraft } from './draft.js'
import { SessionProtocolError } from './errors.js'

/** What a step is given: the session's stored variables (a frozen copy) and the caller's input. */
export interface StepContext {
  sessionId: string
  variables: Readonly<Variables>
  input: JsonValue | undefined
  /** The caller, when the handler has `authorize`. */
  userId: string | undefined
  /** One workflow's scoped view, as the client's `useWorkflow`: what the step changes through it is merged too. */
  workflow<Data extends object = Record<string, JsonValue>>(this: void, workflowId: string): Workflow<Data>
  /** The run's id (a run started with `POST {base}/{id}/runs`); undefined for the synchronous `run/{step}`. */
  runId: string | undefined
  /**
   * Aborted when the run is cancelled, passes its time limit, or its server shuts down; pass it
   * on (`fetch(url, { signal })`). Nothing the step returns after that is merged.
   */
  signal: AbortSignal
  /**
   * Reports progress: any JSON within a variable's limits (a `TypeError` otherwise). The latest
   * value is stored and sent to watchers, at most 4 times a second however often it is called.
   */
  progress(this: void, value: JsonValue): void
}

/** What a step returns: an output for the caller, and variable changes merged atomically. */
export interface StepResult<Output = JsonValue> {
  output?: Output
  variables?: Variables
  deleted?: string[]
}

// eslint-disable-next-line @typescript-eslint/no-invalid-void-type -- a step may return nothing (it changed variables only)
export type Step = (context: StepContext) => StepResult | void | Promise<StepResult | void>

/** A step with its own time limit (the handler's `runTimeoutMs` otherwise). */
export interface StepWithOptions {
  run: Step
  timeoutMs?: number
}

export type Steps = Record<string, Step | StepWithOptions>

/** The function of a registered step. */
export const stepFunction = (definition: Step | StepWithOptions): Step => (typeof definition === 'function' ? definition : definition.run)

/**
 * Throw it from a step to show its message to the caller (as 500 `step_failed`, or a run ended
 * `failed`): it is the step's answer, not a fault, so it is not logged. Any other error is
 * logged and answered with a generic message, so no internals leak.
 *
 * @example
 * steps: { pay: async ({ variables }) => { if (!variables.card) throw new StepError('Add a card first') } }
 */
export class StepError extends Error {
  override name = 'StepError'
}

export async function runStep(step: Step, context: Omit<StepContext, 'workflow'>, report: (error: unknown) => void): Promise<StepResult> {
  const draft = createDraft(context.variables)
  let result: unknown
  try {
    result =
      (await step({
        ...context,
        variables: deepFreeze(structuredClone(context.variables)),
        workflow: (workflowId) => scopeWorkflow(draft.access, workflowId),
      })) ?? {}
  } catch (error) {
    if (error instanceof StepError) throw new SessionProtocolError('step_failed', error.message)
    report(error)
    throw new SessionProtocolError('step_failed', 'The step failed')
  }
  const problem = resultProblem(result)
  if (problem) {
    report(new Error(`Step returned an unusable result: ${problem}`))
    throw new SessionProtocolError('step_failed', `The step returned an unusable result: ${problem}`)
  }
  return withDraftChanges(result as StepResult, draft)
}

/** The step's own result wins over what it did through `workflow(id)`. */
function withDraftChanges(result: StepResult, draft: ReturnType<typeof createDraft>): StepResult {
  if (draft.size === 0) return result
  const { variables: sets, deleted: deletes } = draft.changes()
  return {
    ...result,
    variables: { ...sets, ...result.variables },
    deleted: [...deletes.filter((name) => !Object.hasOwn(result.variables ?? {}, name)), ...(result.deleted ?? [])],
  }
}

function resultProblem(result: unknown): string | null {
  if (!isPlainObject(result)) return 'not an object'
  const { output, variables, deleted } = result
  if (output !== undefined) {
    const problem = jsonValueProblem(output)
    if (problem) return `output: ${problem}`
  }
  if (variables !== undefined && !isPlainObject(variables)) return '"variables" is not an object'
  if (deleted !== undefined && !isStringArray(deleted)) return '"deleted" is not an array of strings'
  return null
}

/**
 * The protocol's conformance step (docs/protocol.md, "The conformance step"), for
 * `workflow-session conformance` to check the step path. Register it only while testing: it
 * echoes the variables it is given.
 *
 * @example
 * createSessionHandler({ store, steps: { ...steps, ...(process.env.CONFORMANCE && conformanceSteps) } })
 */
export const conformanceSteps: Steps = {
  conformance_echo: async ({ input, variables, progress, signal }) => {
    if (isPlainObject(input) && typeof input.fail === 'string') throw new StepError(input.fail)
    if (isPlainObject(input) && typeof input.sleepMs === 'number') {
      const started = Date.now()
      const sleepMs = Math.min(input.sleepMs, 60_000)
      while (Date.now() - started < sleepMs && !signal.aborted) {
        progress({ slept: Date.now() - started })
        await new Promise((resolve) => setTimeout(resolve, 100))
      }
    }
    return { output: { input: input ?? null, seen: variables as Variables }, variables: { conformance_echo: input ?? null } }
  },
}

/**
 * The conformance schema (docs/protocol.md, "Schema versions"): version 2, whose one migration
 * renames `conformance_v1` to `conformance_v2`. A backend declares it while it is tested, so that
 * `workflow-session conformance` can check how it meets old and new clients. Not for production.
 *
 * @example
 * createSessionHandler({ store: memoryStore({ migrations: conformanceMigrations }), steps: conformanceSteps })
 */
export const conformanceMigrations: Migrations = defineMigrations({
  version: 2,
  migrations: [{ to: 2, steps: [{ op: 'rename', from: 'conformance_v1', to: 'conformance_v2' }] }],
})
