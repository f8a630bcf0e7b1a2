import { randomId } from '../client/session-id.js'
import type { Operation, ShapeProblem } from './openapi.js'

/** A check's failure; its message is what is printed under the check. */
export class CheckFailed extends Error {}

/** No HTTP answer at all: refused, reset, or timed out. */
export class NoAnswer extends CheckFailed {
  constructor(
    message: string,
    /** Why, in a few words: `ECONNREFUSED`. */
    readonly reason: string,
  ) {
    super(message)
  }
}

export interface Answer {
  status: number
  // Parsed JSON under test, already matched against docs/openapi.json; undefined when empty.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- read as the document's shape, see eslint.config.js
  body: any
  /** Names the request in messages: `POST {base}/{id}/run/conformance_echo`. */
  request: string
  /** The answer's `ETag` header, or null. */
  etag: string | null
}

/**
 * Who sends a request: the caller (`headers`), the signed-in user (`headers` and `userHeaders`),
 * or a stranger (none of the configured headers).
 */
type As = 'caller' | 'user' | 'stranger'

interface Send {
  /** An object is sent as JSON, a string as it is. */
  body?: string | object
  /** With a body; default `application/json`. */
  contentType?: string
  as?: As
  /** More request headers (`Session-Base`). */
  headers?: Record<string, string>
}

/** One check of the suite; `needs` names what it cannot run without (else it is skipped). */
export interface Check {
  name: string
  needs?: 'step' | 'user' | ReadonlyArray<'step' | 'user'>
  run(this: void, backend: Backend): Promise<void>
}

/** A snapshot as the checks read it: only parsed JSON that matched docs/openapi.json. */
export interface Snapshot {
  sessionId: string
  variables: Record<string, unknown>
  version: number
  createdAt: string
  updatedAt: string
  /** The schema version the variables are in (extension: schema versions); absent is 1. */
  schemaVersion?: number
}

export interface BackendOptions {
  headers: Record<string, string>
  userHeaders: Record<string, string> | undefined
  step: string
  maxBytes: number
  fetch: typeof fetch
  shapeProblem: ShapeProblem
}

/** The backend as the checks see it: requests whose answers are JSON of the documented shape. */
export interface Backend {
  readonly maxBytes: number
  /** Whether `userHeaders` sign a user in. */
  readonly hasUser: boolean
  /** A session id nobody has used: unique to this run. */
  newId(): string
  /** A clientId unique to this run. */
  newClientId(): string
  call(method: 'GET' | 'POST' | 'DELETE', path: string, send?: Send): Promise<Answer>
  get(id: string, as?: As, headers?: Record<string, string>): Promise<Answer>
  patch(id: string, body: string | object, send?: Omit<Send, 'body'>): Promise<Answer>
  /** The name of the conformance step (`--step`). */
  readonly step: string
  /**
   * Runs the conformance step; without a body, sends no body and no Content-Type. An object body
   * is sent in the conformance schema's version unless it says its own `schemaVersion`.
   */
  run(id: string, body?: string | object, send?: Omit<Send, 'body'>): Promise<Answer>
  /**
   * Starts a run of the conformance step (`POST {base}/{id}/runs`), the answer waiting `waitMs`
   * for its end. An object body is sent in the conformance schema's version unless it says its own.
   */
  startRun(id: string, body: string | object, waitMs?: number, send?: Omit<Send, 'body'>): Promise<Answer>
  /** `GET {base}` with a query such as `?limit=1`. */
  list(query?: string, as?: As): Promise<Answer>
  /** `POST {base}/{id}/adopt`, with no body and no Content-Type. */
  adopt(id: string, as?: As): Promise<Answer>
  /** A new session holding `variables` at version 1. */
  seeded(variables?: Record<string, unknown>, as?: As): Promise<Snapshot>
  /** Answers received, and how many of them were 401. */
  readonly counts: { answers: number; unauthenticated: number }
}

const REQUEST_TIMEOUT_MS = 30_000
const AUTH_HINT = ' (the backend requires a user: pass one with --header "Cookie: …")'

/**
 * The version of the conformance schema (docs/protocol.md, "Schema versions"), which the backend
 * declares while it is tested. A step reads and writes the server's shape, so a run or a step
 * call in any other version (one without `schemaVersion` is in 1) is 409: the checks send theirs in this one.
 */
export const CONFORMANCE_SCHEMA_VERSION = 2
export const SCHEMA_HINT =
  ' (the backend must declare the conformance schema while it is tested: conformanceMigrations in TypeScript, conformance_migrations in Python)'

/** A run's or step call's body in the conformance schema's version, unless it says its own; a string is sent as it is. */
const inConformanceSchema = (body: string | object | undefined) =>
  typeof body === 'object' && !Object.hasOwn(body, 'schemaVersion') ? { ...body, schemaVersion: CONFORMANCE_SCHEMA_VERSION } : body

export function createBackend(root: string, options: BackendOptions): Backend {
  const run = randomId()
    .replace(/[^A-Za-z0-9]/g, '')
    .slice(0, 12)
  let made = 0
  const counts = { answers: 0, unauthenticated: 0 }

  async function call(method: 'GET' | 'POST' | 'DELETE', path: string, send: Send = {}): Promise<Answer> {
    const { operation, request } = describeRequest(method, path)
    const as = send.as ?? 'caller'
    const headers: Record<string, string> = {
      ...(as !== 'stranger' && options.headers),
      ...(as === 'user' && options.userHeaders),
      ...send.headers,
    }
    const body = typeof send.body === 'object' ? JSON.stringify(send.body) : send.body
    if (body !== undefined) headers['content-type'] = send.contentType ?? 'application/json'
    let status: number
    let contentType: string
    let etag: string | null
    let text: string
    try {
      const attempt = () => options.fetch(`${root}${path}`, { method, headers, body, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) })
      // A server may answer a body it did not read (a 413 over the limit) and close the connection
      // after, saying so or not; the next request sent on that kept-alive connection is then reset
      // before any answer. That is the connection's fate, not the request's: it is sent once more,
      // and the connection it failed on is gone.
      const response = await attempt().catch((error: unknown) => {
        if (resetBeforeAnswer(error)) return attempt()
        throw error
      })
      status = response.status
      contentType = response.headers.get('content-type') ?? ''
      etag = response.headers.get('etag')
      text = await response.text()
    } catch (error) {
      throw new NoAnswer(`${request} got no answer: ${reason(error)}`, reason(error))
    }
    counts.answers++
    if (status === 401) counts.unauthenticated++
    if (text === '') return { status, body: undefined, request, etag }
    let parsed: unknown
    try {
      parsed = JSON.parse(text)
    } catch {
      throw new CheckFailed(`${request} answered ${status} with a body that is not JSON: ${cut(text)}`)
    }
    if (!/^application\/([\w.-]+\+)?json\b/i.test(contentType)) {
      throw new CheckFailed(`${request} answered ${status} with Content-Type ${JSON.stringify(contentType)}, not application/json`)
    }
    const problem = operation && options.shapeProblem(operation, status, parsed)
    if (problem) throw new CheckFailed(`${request} answered ${status} with ${problem}${status === 401 ? AUTH_HINT : ''}`)
    return { status, body: parsed, request, etag }
  }

  const backend: Backend = {
    maxBytes: options.maxBytes,
    step: options.step,
    hasUser: options.userHeaders !== undefined,
    counts,
    newId: () => `conformance-${run}-${++made}`,
    newClientId: () => `conformance-${run}-client-${++made}`,
    call,
    get: (id, as, headers) => call('GET', `/${id}`, { as, ...(headers && { headers }) }),
    patch: (id, body, send) => call('POST', `/${id}`, { ...send, body }),
    run: (id, body, send) => call('POST', `/${id}/run/${encodeURIComponent(options.step)}`, { ...send, body: inConformanceSchema(body) }),
    startRun: (id, body, waitMs = 0, send) =>
      call('POST', `/${id}/runs${waitMs ? `?waitMs=${waitMs}` : ''}`, { ...send, body: inConformanceSchema(body) }),
    list: (query = '', as) => call('GET', query, { as }),
    adopt: (id, as) => call('POST', `/${id}/adopt`, { as }),
    async seeded(variables = { kept: 1 }, as) {
      const answer = await backend.patch(backend.newId(), { variables }, { as })
      expectStatus(answer, 200)
      return answer.body as Snapshot
    },
  }
  return backend
}

/** Which operation a path names, and how messages name the request (ids of this run as `{id}`). */
function describeRequest(method: string, path: string): { operation: Operation | undefined; request: string } {
  const [route = '', query = ''] = path.split('?')
  const parts = route.split('/').filter(Boolean)
  const shown = parts.map((part, i) =>
    i === 0 && part.startsWith('conformance-') ? '{id}' : part.length > 40 ? `${part.slice(0, 40)}…` : part,
  )
  const request = `${method} {base}${shown.map((part) => `/${part}`).join('')}${query ? `?${query}` : ''}`
  let operation: Operation | undefined
  if (parts.length === 0 && method === 'GET') operation = 'listSessions'
  else if (parts.length === 1) operation = ({ GET: 'getSession', POST: 'patchSession', DELETE: 'deleteSession' } as const)[method as 'GET']
  else if (parts.length === 3 && parts[1] === 'run' && method === 'POST') operation = 'runStep'
  else if (parts.length === 2 && parts[1] === 'adopt' && method === 'POST') operation = 'adoptSession'
  else if (parts.length === 2 && parts[1] === 'runs') operation = method === 'POST' ? 'startRun' : 'listRuns'
  else if (parts.length === 3 && parts[1] === 'runs' && method === 'GET') operation = 'getRun'
  else if (parts.length === 4 && parts[1] === 'runs' && parts[3] === 'cancel' && method === 'POST') operation = 'cancelRun'
  return { operation, request }
}

/** Whether a request failed because its connection was reset or closed before any answer came (not refused, not timed out). */
function resetBeforeAnswer(error: unknown): boolean {
  const { code, cause } = (error ?? {}) as { code?: unknown; cause?: { code?: unknown } }
  return [code, cause?.code].some((it) => it === 'ECONNRESET' || it === 'EPIPE' || it === 'UND_ERR_SOCKET')
}

function reason(error: unknown): string {
  if (error instanceof Error && error.name === 'TimeoutError') return `none within ${REQUEST_TIMEOUT_MS / 1000} s`
  const cause = (error as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (error as Error).message
}

export function fail(message: string): never {
  throw new CheckFailed(message)
}

export function expectStatus(answer: Answer, status: number, hint = ''): void {
  if (answer.status === status) return
  fail(`${answer.request} answered ${answer.status} ${brief(answer.body)}, expected ${status}${hint}${whyRefused(answer)}`)
}

/** The protocol's error: this status and `{ "error": { "code": code, … } }` (the rest of the shape is docs/openapi.json's). */
export function expectError(answer: Answer, status: number, code: string, hint = ''): void {
  if (answer.status === status && answer.body?.error?.code === code) return
  fail(`${answer.request} answered ${answer.status} ${brief(answer.body)}, expected ${status} ${code}${hint}${whyRefused(answer)}`)
}

/** What to do about an unexpected refusal that comes from how the backend is set up, not from a rule it breaks. */
function whyRefused(answer: Answer): string {
  if (answer.status === 401) return AUTH_HINT
  // A 409 that names another version than the conformance schema's: the backend does not declare it.
  const { code, schemaVersion } = answer.body?.error ?? {}
  return code === 'schema_mismatch' && schemaVersion !== CONFORMANCE_SCHEMA_VERSION ? SCHEMA_HINT : ''
}

/** Deep equality of parsed JSON: object keys in any order. */
export function expectSame(actual: unknown, expected: unknown, what: string): void {
  if (!sameJson(actual, expected)) fail(`${what}: expected ${brief(expected)}, got ${brief(actual)}`)
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return false
  if (Array.isArray(a)) return a.length === (b as unknown[]).length && a.every((item, i) => sameJson(item, (b as unknown[])[i]))
  const keys = Object.keys(a)
  return (
    keys.length === Object.keys(b).length &&
    keys.every((key) => Object.hasOwn(b, key) && sameJson((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]))
  )
}

/** JSON of `value`, cut to `max` characters: a message stays short whatever came back. */
export function brief(value: unknown, max = 160): string {
  return value === undefined ? '(no body)' : cut(JSON.stringify(value), max)
}

export function cut(text: string, max = 160): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`
}

/** Waits for the clock to move on, so that two writes get different timestamps. */
export const tick = () => new Promise((resolve) => setTimeout(resolve, 5))
