import type { JsonValue } from '../shared/protocol.js'
import { deepFreeze, jsonValueProblem, keyProblem } from '../shared/rules.js'
import { SessionValueError } from './errors.js'

/** Checks a name and value for `set`, and returns a frozen copy the caller can no longer mutate. */
export function toStoredValue(key: string, value: unknown): JsonValue {
  const badKey = keyProblem(key)
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-conversion -- a JavaScript caller may pass any value (a symbol among them)
  if (badKey) throw new SessionValueError(String(key), badKey)
  const problem = jsonValueProblem(value)
  if (problem) throw new SessionValueError(key, problem)
  if (typeof value !== 'object' || value === null) return value as JsonValue
  return deepFreeze(JSON.parse(JSON.stringify(value)) as JsonValue)
}

/** Structural equality of two JSON values. */
export function jsonEqual(a: JsonValue | undefined, b: JsonValue | undefined): boolean {
  if (Object.is(a, b)) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const aKeys = Object.keys(a)
  if (aKeys.length !== Object.keys(b).length) return false
  return aKeys.every(
    (key) => Object.hasOwn(b, key) && jsonEqual((a as Record<string, JsonValue>)[key], (b as Record<string, JsonValue>)[key]),
  )
}
