import { FORBIDDEN_KEYS, MAX_KEY_LENGTH, SESSION_ID_PATTERN } from './protocol.js'

/** Deepest nesting of arrays and objects a variable may have. */
const MAX_DEPTH = 64

/** A JSON object (not null, not an array). */
export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** An array of strings. */
export const isStringArray = (value: unknown): value is string[] => Array.isArray(value) && value.every((item) => typeof item === 'string')

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/
const nativeWellFormed = (String.prototype as { isWellFormed?: () => boolean }).isWellFormed

/** Whether `text` is Unicode text: no lone surrogate (which UTF-8, and so storage, cannot hold). */
function isWellFormed(text: string): boolean {
  return nativeWellFormed ? nativeWellFormed.call(text) : !LONE_SURROGATE.test(text)
}

/** Length in Unicode code points, the protocol's unit for names and ids (`"😀"` is 1). */
export function codePointLength(text: string): number {
  let length = text.length
  // Each surrogate pair is two UTF-16 units but one code point.
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1)
      if (next >= 0xdc00 && next <= 0xdfff) {
        length--
        i++
      }
    }
  }
  return length
}

/** Why `key` cannot name a variable, or `null` when it can. */
export function keyProblem(key: unknown): string | null {
  if (typeof key !== 'string') return `a variable name must be a string, got ${typeof key}`
  if (key.length === 0) return 'a variable name must not be empty'
  if (key.length > MAX_KEY_LENGTH && codePointLength(key) > MAX_KEY_LENGTH)
    return `variable name is longer than ${MAX_KEY_LENGTH} characters`
  if (FORBIDDEN_KEYS.has(key)) return `"${key}" is reserved and cannot name a variable`
  if (!isWellFormed(key)) return 'a variable name must be Unicode text (it has a lone surrogate)'
  return null
}

/** Whether `id` is a session id the protocol accepts. */
export function isSessionId(id: unknown): id is string {
  return typeof id === 'string' && SESSION_ID_PATTERN.test(id)
}

/** Why `value` is not a JSON value (with where inside it), or `null` when it is one. */
export function jsonValueProblem(value: unknown, maxDepth = MAX_DEPTH): string | null {
  return walk(value, '', 0, maxDepth, new Set())
}

function walk(value: unknown, path: string, depth: number, maxDepth: number, seen: Set<object>): string | null {
  const at = path === '' ? '' : ` at ${path}`
  switch (typeof value) {
    case 'string':
      return isWellFormed(value) ? null : `a string with a lone surrogate is not Unicode text${at}`
    case 'boolean':
      return null
    case 'number':
      return Number.isFinite(value) ? null : `${value} is not a JSON number${at}; store null or a string instead`
    case 'undefined':
      return `undefined is not JSON${at}; use deleteVariable() to remove a variable, or store null`
    case 'function':
      return `a function is not JSON${at}; store data, not code`
    case 'symbol':
      return `a symbol is not JSON${at}; store a string instead`
    case 'bigint':
      return `a BigInt is not JSON${at}; store it as a string (value.toString())`
  }
  if (value === null) return null
  const object = value as object
  if (depth >= maxDepth) return `value is nested deeper than ${maxDepth} levels${at}`
  if (seen.has(object)) return `value contains a cycle${at}; JSON cannot represent it`
  seen.add(object)
  try {
    if (Array.isArray(object)) {
      for (let i = 0; i < object.length; i++) {
        if (!(i in object)) return `array has a hole at ${path}[${i}]; fill it with null`
        const problem = walk(object[i], `${path}[${i}]`, depth + 1, maxDepth, seen)
        if (problem) return problem
      }
      return null
    }
    const proto = Object.getPrototypeOf(object) as unknown
    if (proto !== Object.prototype && proto !== null) return classProblem(object, at)
    for (const [key, item] of Object.entries(object)) {
      if (!isWellFormed(key)) return `an object key with a lone surrogate is not Unicode text${at}`
      const problem = walk(item, `${path}.${key}`, depth + 1, maxDepth, seen)
      if (problem) return problem
    }
    return null
  } finally {
    seen.delete(object)
  }
}

function classProblem(object: object, at: string): string {
  if (object instanceof Date) return `a Date is not JSON${at}; store date.toISOString()`
  if (object instanceof Map) return `a Map is not JSON${at}; store Object.fromEntries(map) or [...map]`
  if (object instanceof Set) return `a Set is not JSON${at}; store [...set]`
  const name = (object.constructor as { name?: string } | undefined)?.name ?? 'object'
  return `a ${name} instance is not plain JSON${at}; store a plain object or array copy of its data`
}

/** Freezes a JSON value and everything inside it, so nobody can change it behind our back. */
export function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value)
    for (const item of Object.values(value)) deepFreeze(item)
  }
  return value
}

/** Bytes of `text` in UTF-8, counted without encoding it (a lone surrogate counts as U+FFFD, 3 bytes). */
export function utf8Length(text: string): number {
  let bytes = text.length
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i)
    if (unit < 0x80) continue
    if (unit < 0x800) bytes += 1
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 2 // a surrogate pair: 2 units, 4 bytes
      i++
    } else bytes += 2
  }
  return bytes
}
