import type { JsonValue, Variables } from '../shared/protocol.js'
import { jsonValueProblem } from '../shared/rules.js'
import { SessionProtocolError } from './errors.js'

/** What a step is given: the session's stored variables (a frozen copy) and the caller's input. */
export interface StepContext {
  sessionId: string
  variables: Readonly<Variables>
  input: JsonValue | undefined
  /** The caller, when the handler has `authorize`. */
  userId: string | undefined
}

/** What a step returns: an output for the caller, and variable changes merged atomically. */
export interface StepResult<Output = JsonValue> {
  output?: Output
  variables?: Variables
  deleted?: string[]
}

export type Step = (context: StepContext) => StepResult | void | Promise<StepResult | void>

export type Steps = Record<string, Step>

/**
 * Throw it from a step to show its message to the caller (as 500 `step_failed`); any other
 * error is logged and answered with a generic message, so no internals leak.
 *
 * @example
 * steps: { pay: async ({ variables }) => { if (!variables.card) throw new StepError('Add a card first') } }
 */
export class StepError extends Error {
  override name = 'StepError'
}

export async function runStep(step: Step, context: StepContext, report: (error: unknown) => void): Promise<StepResult> {
  let result: unknown
  try {
    result = (await step({ ...context, variables: deepFreeze(structuredClone(context.variables)) })) ?? {}
  } catch (error) {
    report(error)
    throw new SessionProtocolError('step_failed', error instanceof StepError ? error.message : 'The step failed')
  }
  const problem = resultProblem(result)
  if (problem) {
    report(new Error(`Step returned an unusable result: ${problem}`))
    throw new SessionProtocolError('step_failed', `The step returned an unusable result: ${problem}`)
  }
  return result as StepResult
}

function resultProblem(result: unknown): string | null {
  if (typeof result !== 'object' || result === null || Array.isArray(result)) return 'not an object'
  const { output, variables, deleted } = result as Record<string, unknown>
  if (output !== undefined) {
    const problem = jsonValueProblem(output)
    if (problem) return `output: ${problem}`
  }
  if (variables !== undefined && (typeof variables !== 'object' || variables === null || Array.isArray(variables))) {
    return '"variables" is not an object'
  }
  if (deleted !== undefined && !(Array.isArray(deleted) && deleted.every((key) => typeof key === 'string'))) {
    return '"deleted" is not an array of strings'
  }
  return null
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const item of Object.values(value)) deepFreeze(item)
  }
  return value
}
