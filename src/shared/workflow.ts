import type { JsonValue } from './protocol.js'
import { parseWorkflowKey, workflowDataKey, workflowPrefix, type WorkflowSlot, workflowSlotKey } from './workflow-keys.js'

/** Read and write session variables by name: what a workflow scope needs from a client or a step. */
export interface VariableAccess {
  get(name: string): JsonValue | undefined
  set(name: string, value: JsonValue): void
  delete(name: string): void
  names(): Iterable<string>
}

/** A parent flow waiting for its subflow to return. */
export interface SubflowFrame {
  flow: string
  step: string | null
  params: JsonValue | null
}

/**
 * One workflow's part of a session: its data fields, current step, and subflow stack. Each field
 * is its own session variable (see `workflow-keys.ts`), so two workflows never collide.
 *
 * @example
 * const checkout = workflow('checkout')
 * checkout.set('address', { city: 'Paris' })
 * checkout.setStep('payment')
 * checkout.enterSubflow('3ds', 'challenge', { amount: 42 })
 * checkout.exitSubflow('confirm') // back in checkout, at step 'confirm'
 */
export interface Workflow<Data extends object = Record<string, JsonValue>> {
  readonly id: string
  get<K extends keyof Data & string>(key: K): Data[K] | undefined
  get<K extends keyof Data & string>(key: K, defaultValue: Data[K]): Data[K]
  set<K extends keyof Data & string>(this: void, key: K, value: Data[K]): void
  has(key: keyof Data & string): boolean
  delete(this: void, key: keyof Data & string): void
  /** Removes every field, the step and the subflow stack of this workflow; other workflows stay. */
  clear(this: void): void
  /** This workflow's data fields. */
  getAll(): Partial<Data>
  /** The current step of the current flow, or null. */
  readonly step: string | null
  setStep(this: void, step: string): void
  /** The flow the workflow is in now: its own id, or the subflow it entered. */
  readonly flow: string
  /** The parent flows, outermost first. */
  readonly stack: readonly SubflowFrame[]
  /** The params the current subflow was entered with (null at the top level). */
  readonly params: JsonValue | null
  /** Saves where this flow is, then moves into `flow` at `step`. */
  enterSubflow(this: void, flow: string, step: string, params?: JsonValue): void
  /** Leaves the current subflow: back in the parent flow, at `returnStep`. Throws at the top level. */
  exitSubflow(this: void, returnStep: string): void
  /** When the server last recorded a change of this workflow (ISO time), or null. */
  readonly lastModified: string | null
}

const NO_FRAMES: readonly SubflowFrame[] = Object.freeze([])

/** A workflow scope over any variable access (a client's view, or a step's draft). */
export function scopeWorkflow<Data extends object = Record<string, JsonValue>>(access: VariableAccess, id: string): Workflow<Data> {
  const slot = (name: WorkflowSlot) => workflowSlotKey(id, name)
  const stack = (): readonly SubflowFrame[] => {
    const value = access.get(slot('stack'))
    return Array.isArray(value) ? (value as unknown as SubflowFrame[]) : NO_FRAMES
  }
  const stringOrNull = (value: JsonValue | undefined) => (typeof value === 'string' ? value : null)
  const currentStep = () => stringOrNull(access.get(slot('step')))
  const currentFlow = () => stringOrNull(access.get(slot('flow'))) ?? id
  const currentParams = () => access.get(slot('params')) ?? null

  return {
    id,
    get(key: string, defaultValue?: unknown) {
      const value = access.get(workflowDataKey(id, key))
      return value === undefined ? defaultValue : value
    },
    set: (key, value) => access.set(workflowDataKey(id, key), value as JsonValue),
    has: (key) => access.get(workflowDataKey(id, key)) !== undefined,
    delete: (key) => access.delete(workflowDataKey(id, key)),
    clear() {
      const prefix = workflowPrefix(id)
      for (const name of [...access.names()]) {
        if (name.startsWith(prefix) && name !== slot('at')) access.delete(name)
      }
    },
    getAll() {
      const all: Record<string, unknown> = {}
      for (const name of access.names()) {
        const parsed = parseWorkflowKey(name)
        if (parsed && 'field' in parsed && parsed.workflowId === id) all[parsed.field] = access.get(name)
      }
      return all as Partial<Data>
    },
    get step() {
      return currentStep()
    },
    setStep: (step) => access.set(slot('step'), step),
    get flow() {
      return currentFlow()
    },
    get stack() {
      return stack()
    },
    get params() {
      return currentParams()
    },
    enterSubflow(flow, step, params) {
      const frame: SubflowFrame = { flow: currentFlow(), step: currentStep(), params: currentParams() }
      access.set(slot('stack'), [...stack(), frame] as unknown as JsonValue)
      access.set(slot('flow'), flow)
      access.set(slot('step'), step)
      access.set(slot('params'), params ?? null)
    },
    exitSubflow(returnStep) {
      const frames = [...stack()]
      const parent = frames.pop()
      if (!parent) throw new Error(`Workflow "${id}" is not in a subflow: nothing to exit`)
      if (frames.length > 0) access.set(slot('stack'), frames as unknown as JsonValue)
      else access.delete(slot('stack'))
      if (parent.flow === id) access.delete(slot('flow'))
      else access.set(slot('flow'), parent.flow)
      access.set(slot('step'), returnStep)
      if (parent.params === null) access.delete(slot('params'))
      else access.set(slot('params'), parent.params)
    },
    get lastModified() {
      return stringOrNull(access.get(slot('at')))
    },
  }
}
