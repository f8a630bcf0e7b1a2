import { randomId } from './client/session-id.js'

/** The outcome of one protocol check. */
export interface ConformanceResult {
  name: string
  ok: boolean
  /** Why it failed. */
  detail?: string
}

export interface ConformanceOptions {
  /** Sent with every request (a session cookie or token when the backend requires a user). */
  headers?: Record<string, string>
  fetch?: typeof fetch
}

interface Answer {
  status: number
  // Parsed JSON under test: its shape is what the checks find out.
  body: any
}

class CheckFailed extends Error {}

/**
 * Runs the checks of docs/protocol.md against a backend over HTTP. `base` is where the session
 * endpoints are mounted, e.g. `http://localhost:3000/api/session`. Each check uses a session of
 * its own; nothing else on the backend is touched.
 *
 * @example
 * const results = await runConformance('http://localhost:8000/api/session')
 * console.log(results.filter((r) => !r.ok))
 */
export async function runConformance(base: string, options: ConformanceOptions = {}): Promise<ConformanceResult[]> {
  const root = base.replace(/\/+$/, '')
  // With credentials the caller is somebody, and "their sessions" can be checked.
  const identified = Object.keys(options.headers ?? {}).length > 0
  const fetchFn = options.fetch ?? globalThis.fetch
  const newId = () => `conformance-${randomId().slice(0, 16).replace(/[^A-Za-z0-9]/g, 'x')}`

  async function call(method: string, path: string, body?: string | object, contentType = 'application/json'): Promise<Answer> {
    const headers: Record<string, string> = { ...options.headers }
    if (body !== undefined) headers['content-type'] = contentType
    const response = await fetchFn(`${root}${path}`, { method, headers, ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }) })
    const text = await response.text()
    let parsed: unknown = undefined
    if (text !== '') {
      try {
        parsed = JSON.parse(text)
      } catch {
        throw new CheckFailed(`${method} ${path} answered ${response.status} with a body that is not JSON`)
      }
    }
    return { status: response.status, body: parsed }
  }
  const post = (id: string, patch: string | object, contentType?: string) => call('POST', `/${id}`, patch, contentType)

  function expectStatus(answer: Answer, status: number, what: string) {
    if (answer.status !== status) throw new CheckFailed(`${what}: expected ${status}, got ${answer.status} ${JSON.stringify(answer.body)}`)
  }
  function expectError(answer: Answer, status: number, code: string) {
    expectStatus(answer, status, `error ${code}`)
    const error = answer.body?.error
    if (error?.code !== code || typeof error?.message !== 'string') {
      throw new CheckFailed(`expected { "error": { "code": "${code}", "message": … } }, got ${JSON.stringify(answer.body)}`)
    }
  }
  function expectEqual(actual: unknown, expected: unknown, what: string) {
    if (JSON.stringify(actual) !== JSON.stringify(expected)) {
      throw new CheckFailed(`${what}: expected ${JSON.stringify(expected)}, got ${JSON.stringify(actual)}`)
    }
  }
  /** Makes a session at version 1 holding `{ kept: 1 }`. */
  async function seeded(): Promise<string> {
    const id = newId()
    expectStatus(await post(id, { variables: { kept: 1 } }), 200, 'seeding a session')
    return id
  }
  /** An error must change nothing: the seeded session is still at version 1 with `{ kept: 1 }`. */
  async function expectUnchanged(id: string) {
    const after = await call('GET', `/${id}`)
    expectStatus(after, 200, 'GET after an error')
    expectEqual({ variables: after.body.variables, version: after.body.version }, { variables: { kept: 1 }, version: 1 }, 'the session after an error')
  }
  const rejects = (name: string, body: string | object, status: number, code: string, contentType?: string) =>
    [
      name,
      async () => {
        const id = await seeded()
        expectError(await post(id, body, contentType), status, code)
        await expectUnchanged(id)
      },
    ] as const

  const checks: ReadonlyArray<readonly [string, () => Promise<void>]> = [
    ['GET of a missing session is 404 not_found', async () => expectError(await call('GET', `/${newId()}`), 404, 'not_found')],
    [
      'the first patch creates the session at version 1 and returns the snapshot',
      async () => {
        const id = newId()
        const { status, body } = await post(id, { variables: { email: 'a@b.c' } })
        expectStatus({ status, body }, 200, 'first patch')
        expectEqual([body.sessionId, body.variables, body.version], [id, { email: 'a@b.c' }, 1], 'snapshot')
        for (const field of ['createdAt', 'updatedAt']) {
          if (Number.isNaN(Date.parse(body[field]))) throw new CheckFailed(`${field} is not a date: ${JSON.stringify(body[field])}`)
        }
        expectEqual((await call('GET', `/${id}`)).body, body, 'GET after the patch')
      },
    ],
    [
      'a patch merges per top-level key: a key replaces its value whole, null is a value, deleted removes',
      async () => {
        const id = newId()
        await post(id, { variables: { cart: { a: 1, b: 2 }, keep: true, draft: 'x' } })
        const { body } = await post(id, { variables: { cart: { c: 3 }, note: null }, deleted: ['draft'] })
        expectEqual(body.variables, { cart: { c: 3 }, keep: true, note: null }, 'merged variables')
        expectEqual(body.version, 2, 'version')
      },
    ],
    [
      'an empty patch does not add to version',
      async () => {
        const id = await seeded()
        expectEqual((await post(id, {})).body.version, 1, 'version after an empty patch')
      },
    ],
    [
      'a patch replayed with the same clientId and seq is applied once',
      async () => {
        const id = newId()
        await post(id, { variables: { n: 1 }, clientId: 'conformance-a', seq: 1 })
        await post(id, { variables: { n: 2 }, clientId: 'conformance-b', seq: 1 })
        const replay = await post(id, { variables: { n: 1 }, clientId: 'conformance-a', seq: 1 })
        expectStatus(replay, 200, 'replay')
        expectEqual([replay.body.variables, replay.body.version], [{ n: 2 }, 2], 'snapshot after the replay')
        const next = await post(id, { variables: { n: 3 }, clientId: 'conformance-a', seq: 2 })
        expectEqual([next.body.variables, next.body.version], [{ n: 3 }, 3], 'snapshot after the next seq')
      },
    ],
    [
      'DELETE answers 204, then the session is 404',
      async () => {
        const id = await seeded()
        expectStatus(await call('DELETE', `/${id}`), 204, 'DELETE')
        expectError(await call('GET', `/${id}`), 404, 'not_found')
      },
    ],
    [
      identified
        ? 'GET of the base lists the caller\'s sessions as { "sessions": [...] }, with one just written, without variables'
        : 'GET of the base answers { "sessions": [...] } (run with --header to check that the caller\'s sessions are listed)',
      async () => {
        const id = await seeded()
        const { status, body } = await call('GET', '')
        expectStatus({ status, body }, 200, 'list')
        if (!Array.isArray(body?.sessions)) throw new CheckFailed(`expected { "sessions": [...] }, got ${JSON.stringify(body)}`)
        if (body.sessions.some((s: object) => 'variables' in s)) throw new CheckFailed('a list entry carries variables')
        if (identified && !body.sessions.some((s: { sessionId?: string }) => s.sessionId === id)) {
          throw new CheckFailed('a session the caller just wrote is not in their list')
        }
      },
    ],
    [
      'a run of a step that is not registered is 404 unknown_step',
      async () => expectError(await call('POST', `/${await seeded()}/run/conformance-no-such-step`, {}), 404, 'unknown_step'),
    ],
    rejects('a body that is not JSON is 400 invalid_json', '{"variables": {', 400, 'invalid_json'),
    rejects('a patch that is not an object is 400 invalid_patch', [1, 2], 400, 'invalid_patch'),
    rejects('"variables" that is not an object is 400 invalid_patch', { variables: ['x'] }, 400, 'invalid_patch'),
    rejects('"deleted" that is not a string array is 400 invalid_patch', { deleted: [1] }, 400, 'invalid_patch'),
    rejects('a bad "seq" is 400 invalid_patch', { variables: { kept: 2 }, clientId: 'conformance', seq: -1 }, 400, 'invalid_patch'),
    rejects('an empty key is 400 invalid_key', { variables: { '': 1 } }, 400, 'invalid_key'),
    rejects('a key over 256 characters is 400 invalid_key', { variables: { ['k'.repeat(257)]: 1 } }, 400, 'invalid_key'),
    rejects('"__proto__" as a key is 400 invalid_key', '{"variables": {"kept": 2, "__proto__": {"polluted": true}}}', 400, 'invalid_key'),
    rejects('"constructor" as a key is 400 invalid_key', { variables: { constructor: 1 } }, 400, 'invalid_key'),
    rejects('"prototype" as a deleted key is 400 invalid_key', { deleted: ['prototype'] }, 400, 'invalid_key'),
    rejects('a body that is not application/json is 415', '{"variables":{"kept":2}}', 415, 'unsupported_media_type', 'text/plain'),
    rejects('a body over 1 MiB is 413 too_large', { variables: { kept: 'x'.repeat(1024 * 1024 + 1) } }, 413, 'too_large'),
    [
      'a malformed session id is 400 invalid_session_id',
      async () => {
        expectError(await call('GET', '/short'), 400, 'invalid_session_id')
        expectError(await post('bad.id.here', { variables: { a: 1 } }), 400, 'invalid_session_id')
      },
    ],
  ]

  const results: ConformanceResult[] = []
  for (const [name, check] of checks) {
    try {
      await check()
      results.push({ name, ok: true })
    } catch (error) {
      results.push({ name, ok: false, detail: error instanceof CheckFailed ? error.message : `request failed: ${(error as Error).message}` })
    }
  }
  return results
}
