import type { SessionError } from '../client/errors.js'
import type { JsonValue } from '../shared/protocol.js'

/** Values are shown as JSON; a value object's text is kept by identity (the client gives the same object until it changes). */
const jsonTexts = new WeakMap<object, string>()

/** A value as JSON text; `undefined` (a variable deleted here) as the empty string. */
export function jsonText(value: JsonValue | undefined): string {
  if (value === undefined) return ''
  if (value === null || typeof value !== 'object') return JSON.stringify(value)
  let text = jsonTexts.get(value)
  if (text === undefined) {
    text = JSON.stringify(value)
    jsonTexts.set(value, text)
  }
  return text
}

/** `text` cut to `max` characters, with an ellipsis when cut. */
export const truncate = (text: string, max = 80) => (text.length > max ? `${text.slice(0, max - 1)}…` : text)

/** An id cut to its first 8 characters (shown with the full id in a title). */
export const shortId = (id: string) => truncate(id, 9)

/** A span of time as a person reads it: `0.4 s`, `12 s`, `3 min 4 s`, `1 h 2 min`. */
export function duration(ms: number): string {
  const seconds = Math.max(0, ms) / 1000
  if (seconds < 10) return `${seconds.toFixed(1)} s`
  if (seconds < 60) return `${Math.floor(seconds)} s`
  const minutes = Math.floor(seconds / 60)
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`
}

/** How long ago `at` was, seen from `now`. */
export const ago = (at: number, now: number) => `${duration(now - at)} ago`

/** A moment to come, seen from `now`: `in 2.3 s`, or `now` once due. */
export const countdown = (at: number, now: number) => (at > now ? `in ${duration(at - now)}` : 'now')

/** The clock time of `at`, to the millisecond: `14:03:07.215`. */
export function clock(at: number): string {
  const date = new Date(at)
  const pad = (n: number, width = 2) => String(n).padStart(width, '0')
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`
}

/** An error as one line: `unavailable (503)`. */
export const errorCode = (error: Pick<SessionError, 'code' | 'status'>) =>
  error.status === undefined ? error.code : `${error.code} (${error.status})`

/** An error with its message: `unavailable (503): Made to fail on purpose`. */
export const errorLine = (error: Pick<SessionError, 'code' | 'status' | 'message'>) => `${errorCode(error)}: ${error.message}`
