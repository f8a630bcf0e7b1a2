import { describe, expect, it } from 'vitest'
import { StepError } from '../../src/server/index.js'
import { ID, setup } from './helpers.js'

describe('session endpoints', () => {
  it('creates a session with the first patch (version 1) and bumps version per applied patch', async () => {
    const { call } = setup()
    const first = await call('POST', `/api/session/${ID}`, { variables: { email: 'a@b.c' } })
    expect(first.status).toBe(200)
    expect(first.body).toMatchObject({ sessionId: ID, variables: { email: 'a@b.c' }, version: 1 })
    expect(Date.parse(first.body.createdAt)).not.toBeNaN()

    const second = await call('POST', `/api/session/${ID}`, { variables: { name: 'Ada' }, deleted: ['email'] })
    expect(second.body).toMatchObject({ variables: { name: 'Ada' }, version: 2 })
    expect((await call('GET', `/api/session/${ID}`)).body).toEqual(second.body)
  })

  it('merges per top-level key: a key replaces its value whole, null is a value', async () => {
    const { call } = setup()
    await call('POST', `/api/session/${ID}`, { variables: { cart: { a: 1, b: 2 }, keep: true } })
    const { body } = await call('POST', `/api/session/${ID}`, { variables: { cart: { c: 3 }, note: null } })
    expect(body.variables).toEqual({ cart: { c: 3 }, keep: true, note: null })
  })

  it('does not bump the version for an empty patch', async () => {
    const { call } = setup()
    await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
    const { body } = await call('POST', `/api/session/${ID}`, {})
    expect(body.version).toBe(1)
  })

  it('applies a patch replayed with the same clientId and seq once', async () => {
    const { call } = setup()
    await call('POST', `/api/session/${ID}`, { variables: { n: 1 }, clientId: 'tab-1', seq: 1 })
    await call('POST', `/api/session/${ID}`, { variables: { n: 2 }, clientId: 'tab-2', seq: 1 })
    const replay = await call('POST', `/api/session/${ID}`, { variables: { n: 1 }, clientId: 'tab-1', seq: 1 })
    expect(replay.status).toBe(200)
    expect(replay.body).toMatchObject({ variables: { n: 2 }, version: 2 })
    const next = await call('POST', `/api/session/${ID}`, { variables: { n: 3 }, clientId: 'tab-1', seq: 2 })
    expect(next.body).toMatchObject({ variables: { n: 3 }, version: 3 })
  })

  it('answers 404 for a session that does not exist, and DELETE removes one (204)', async () => {
    const { call } = setup()
    expect(await call('GET', `/api/session/${ID}`)).toMatchObject({ status: 404, body: { error: { code: 'not_found' } } })
    await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
    expect((await call('DELETE', `/api/session/${ID}`)).status).toBe(204)
    expect((await call('GET', `/api/session/${ID}`)).status).toBe(404)
    expect((await call('DELETE', `/api/session/${ID}`)).status).toBe(404)
  })

  it("lists the caller's sessions newest first, without their variables; an anonymous caller sees none", async () => {
    const { call } = setup({ authorize: (request) => request.headers.get('x-user') })
    const ada = { 'x-user': 'ada' }
    await call('POST', '/api/session/first-session', { variables: { a: 1 } }, ada)
    await new Promise((resolve) => setTimeout(resolve, 5))
    await call('POST', '/api/session/second-session', { variables: { b: 1 } }, ada)
    await call('POST', '/api/session/anonymous-session', { variables: { c: 1 } })
    expect((await call('GET', '/api/session')).body).toEqual({ sessions: [] })
    const { status, body } = await call('GET', '/api/session', undefined, ada)
    expect(status).toBe(200)
    expect(body.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual(['second-session', 'first-session'])
    expect(body.sessions[0]).not.toHaveProperty('variables')
  })
})

describe('steps', () => {
  it('runs a step on the stored variables and merges its changes with one version bump', async () => {
    const { call } = setup({
      steps: {
        register: ({ variables, input }) => ({
          output: { greeting: `Hello ${String(variables.name)}`, input: input ?? null },
          variables: { status: 'registered' },
          deleted: ['draft'],
        }),
      },
    })
    await call('POST', `/api/session/${ID}`, { variables: { name: 'Ada', draft: 'x' } })
    const { status, body } = await call('POST', `/api/session/${ID}/run/register`, { input: 42 })
    expect(status).toBe(200)
    expect(body.output).toEqual({ greeting: 'Hello Ada', input: 42 })
    expect(body.session).toMatchObject({ variables: { name: 'Ada', status: 'registered' }, version: 2 })
  })

  it('gives a step a frozen copy of the variables', async () => {
    const { call } = setup({
      steps: {
        mutate: ({ variables }) => {
          ;(variables as Record<string, unknown>).name = 'Eve'
        },
      },
    })
    await call('POST', `/api/session/${ID}`, { variables: { name: 'Ada' } })
    const { status, body } = await call('POST', `/api/session/${ID}/run/mutate`, {})
    expect(status).toBe(500)
    expect(body.error.code).toBe('step_failed')
    expect((await call('GET', `/api/session/${ID}`)).body.variables).toEqual({ name: 'Ada' })
  })

  it('answers a throwing step with 500 step_failed, no stack, and changes nothing', async () => {
    const { call, errors } = setup({
      steps: {
        secret: () => {
          throw new Error('db password is hunter2')
        },
        pay: () => {
          throw new StepError('Add a card first')
        },
      },
    })
    await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
    const hidden = await call('POST', `/api/session/${ID}/run/secret`, {})
    expect(hidden).toMatchObject({ status: 500, body: { error: { code: 'step_failed', message: 'The step failed' } } })
    expect(JSON.stringify(hidden.body)).not.toContain('hunter2')
    const shown = await call('POST', `/api/session/${ID}/run/pay`, {})
    expect(shown.body.error).toEqual({ code: 'step_failed', message: 'Add a card first' })
    // Only the unexpected error is logged: a StepError is the step's answer, not a fault.
    expect(errors).toHaveLength(1)
    expect((await call('GET', `/api/session/${ID}`)).body).toMatchObject({ version: 1, variables: { a: 1 } })
  })

  it('refuses step changes that break the rules, storing nothing', async () => {
    const { call } = setup({ steps: { bad: () => ({ variables: { ['__proto__']: 1 } }) } })
    await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
    const { status, body } = await call('POST', `/api/session/${ID}/run/bad`, {})
    expect(status).toBe(500)
    expect(body.error.code).toBe('step_failed')
    expect((await call('GET', `/api/session/${ID}`)).body.version).toBe(1)
  })

  it('answers 404 unknown_step for a step that is not registered, including Object.prototype names', async () => {
    const { call } = setup({ steps: {} })
    for (const step of ['nope', 'toString', 'constructor']) {
      const { status, body } = await call('POST', `/api/session/${ID}/run/${step}`, {})
      expect(status).toBe(404)
      expect(body.error.code).toBe('unknown_step')
    }
  })
})

describe('every protocol error is JSON and changes nothing', () => {
  const cases: Array<[string, string, string, unknown, Record<string, string>?, number?]> = [
    ['invalid_json', 'POST', `/api/session/${ID}`, '{"variables": {', undefined, 400],
    ['invalid_patch (not an object)', 'POST', `/api/session/${ID}`, [1, 2], undefined, 400],
    ['invalid_patch (variables)', 'POST', `/api/session/${ID}`, { variables: [1] }, undefined, 400],
    ['invalid_patch (deleted)', 'POST', `/api/session/${ID}`, { deleted: [1] }, undefined, 400],
    ['invalid_patch (seq)', 'POST', `/api/session/${ID}`, { variables: { a: 2 }, clientId: 'c', seq: -1 }, undefined, 400],
    ['invalid_patch (seq without clientId)', 'POST', `/api/session/${ID}`, { variables: { a: 2 }, seq: 3 }, undefined, 400],
    ['invalid_key (empty)', 'POST', `/api/session/${ID}`, { variables: { '': 1 } }, undefined, 400],
    ['invalid_key (long)', 'POST', `/api/session/${ID}`, { variables: { ['k'.repeat(257)]: 1 } }, undefined, 400],
    ['invalid_key (__proto__)', 'POST', `/api/session/${ID}`, '{"variables": {"ok": 2, "__proto__": {"polluted": true}}}', undefined, 400],
    ['invalid_key (constructor)', 'POST', `/api/session/${ID}`, { variables: { constructor: 1 } }, undefined, 400],
    ['invalid_key (prototype, deleted)', 'POST', `/api/session/${ID}`, { deleted: ['prototype'] }, undefined, 400],
    ['unsupported_media_type', 'POST', `/api/session/${ID}`, '{"variables":{"a":2}}', { 'content-type': 'text/plain' }, 415],
    ['too_large', 'POST', `/api/session/${ID}`, { variables: { a: 'x'.repeat(2048) } }, undefined, 413],
  ]

  for (const [name, method, path, body, headers, status] of cases) {
    it(`${name} → ${status}`, async () => {
      const { call } = setup({ maxBytes: 1024 })
      await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
      const response = await call(method, path, body, headers)
      expect(response.status).toBe(status)
      expect(response.headers.get('content-type')).toContain('application/json')
      expect(response.body.error.code).toBe(name.split(' ')[0])
      expect(typeof response.body.error.message).toBe('string')
      expect((await call('GET', `/api/session/${ID}`)).body).toMatchObject({ version: 1, variables: { a: 1 } })
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    })
  }

  it('invalid_session_id → 400 on every endpoint', async () => {
    const { call } = setup()
    for (const [method, path, body] of [
      ['GET', '/api/session/short'],
      ['POST', '/api/session/has%20space!', { variables: { a: 1 } }],
      ['DELETE', `/api/session/${'x'.repeat(129)}`],
      ['POST', '/api/session/bad.id.here/run/x', {}],
    ] as const) {
      const response = await call(method, path, body)
      expect(response.status).toBe(400)
      expect(response.body.error.code).toBe('invalid_session_id')
    }
  })

  it('too_large when the merged session would pass the limit, though each patch is small', async () => {
    const { call } = setup({ maxBytes: 600 })
    await call('POST', `/api/session/${ID}`, { variables: { a: 'x'.repeat(400) } })
    const response = await call('POST', `/api/session/${ID}`, { variables: { b: 'y'.repeat(400) } })
    expect(response.status).toBe(413)
    expect(response.body.error.code).toBe('too_large')
    expect((await call('GET', `/api/session/${ID}`)).body.variables).toEqual({ a: 'x'.repeat(400) })
  })

  it('too_large is decided while reading the body, before it is buffered whole', async () => {
    const { handler } = setup({ maxBytes: 1024 })
    let pulled = 0
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++
        if (pulled > 1000) controller.close()
        else controller.enqueue(new Uint8Array(512))
      },
    })
    const request = new Request(`http://localhost/api/session/${ID}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
      duplex: 'half',
    } as RequestInit)
    const response = await handler(request)
    expect(response.status).toBe(413)
    expect(pulled).toBeLessThan(10)
  })

  it('answers 401 unauthenticated when a user is required and the request has none', async () => {
    const { call } = setup({ authorize: (request) => request.headers.get('x-user'), requireUser: true })
    expect((await call('GET', `/api/session/${ID}`)).body.error.code).toBe('unauthenticated')
    expect((await call('GET', `/api/session/${ID}`, undefined, { 'x-user': 'ada' })).status).toBe(404)
  })

  it("answers another user's session as 404 not_found on every endpoint", async () => {
    const { call } = setup({ authorize: (request) => request.headers.get('x-user'), steps: { s: () => ({ output: 1 }) } })
    const ada = { 'x-user': 'ada' }
    const eve = { 'x-user': 'eve' }
    await call('POST', `/api/session/${ID}`, { variables: { secret: 1 } }, ada)
    for (const [method, path, body] of [
      ['GET', `/api/session/${ID}`],
      ['POST', `/api/session/${ID}`, { variables: { secret: 2 } }],
      ['POST', `/api/session/${ID}/run/s`, {}],
      ['DELETE', `/api/session/${ID}`],
    ] as const) {
      const response = await call(method, path, body, eve)
      expect(response.status, `${method} ${path}`).toBe(404)
      expect(response.body.error.code).toBe('not_found')
    }
    expect((await call('GET', '/api/session', undefined, eve)).body.sessions).toEqual([])
    expect((await call('GET', `/api/session/${ID}`, undefined, ada)).body).toMatchObject({
      version: 1,
      variables: { secret: 1 },
      userId: 'ada',
    })
  })

  it("tells no one which ids exist: another user's session and an unused id look the same on every read, delete and stream", async () => {
    const { handler, store } = setup({ authorize: (request) => request.headers.get('x-user'), steps: { s: () => ({ output: 1 }) } })
    await store.create('owned-by-ada-0001', { variables: { secret: 1 }, userId: 'ada' })
    /** Everything a caller can observe of one request: status, headers, and the body (the first chunk of a stream). */
    const observe = async (method: string, path: string, headers: Record<string, string>, body?: string) => {
      const abort = new AbortController()
      const init: RequestInit = {
        method,
        headers: { ...headers, ...(body !== undefined && { 'content-type': 'application/json' }) },
        signal: abort.signal,
      }
      if (body !== undefined) init.body = body
      const response = await handler(new Request(`http://localhost${path}`, init))
      const reader = response.body?.getReader()
      const first = reader ? await reader.read() : undefined
      abort.abort()
      await reader?.cancel().catch(() => {})
      return { status: response.status, headers: [...response.headers], body: first?.value ? new TextDecoder().decode(first.value) : '' }
    }
    const requests: Array<[string, string, string?]> = [
      ['GET', ''],
      ['DELETE', ''],
      ['GET', '/events'],
      ['PUT', '', '{}'],
      ['GET', '/run/s'],
      ['POST', '/run/unknown', '{}'],
      ['POST', '/elsewhere', '{}'],
    ]
    for (const who of [{ 'x-user': 'eve' }, {}] as Array<Record<string, string>>) {
      for (const [method, suffix, body] of requests) {
        const theirs = await observe(method, `/api/session/owned-by-ada-0001${suffix}`, who, body)
        const unused = await observe(method, `/api/session/never-used-0001${suffix}`, who, body)
        expect(theirs, `${method} {id}${suffix} as ${JSON.stringify(who)}`).toEqual(unused)
      }
    }
    // Ada's session is untouched, and the unused id is still unused.
    expect(await store.get('owned-by-ada-0001')).toMatchObject({ version: 1, variables: { secret: 1 } })
    expect(await store.get('never-used-0001')).toBeNull()
  })

  it('holds to the contract in detail (docs/protocol.md): paging, lengths in code points, Unicode text, run bodies, check order', async () => {
    const { call, handler, store } = setup({
      authorize: (request) => request.headers.get('x-user'),
      steps: { s: ({ input }) => ({ output: input ?? null }) },
    })
    const ada = { 'x-user': 'ada' }
    for (let i = 0; i < 3; i++) await store.apply(`paged-session-${i}`, { variables: { i } }, { caller: { userId: 'ada' } })
    expect((await call('GET', '/api/session?limit=2', undefined, ada)).body.sessions).toHaveLength(2)
    expect((await call('GET', '/api/session?limit=2&offset=2', undefined, ada)).body.sessions).toHaveLength(1)
    for (const query of ['limit=0', 'limit=101', 'limit=x', 'offset=-1', 'offset=1.5']) {
      expect((await call('GET', `/api/session?${query}`, undefined, ada)).body.error.code, query).toBe('bad_request')
    }
    // 256 code points is the longest name, however many UTF-16 units they take.
    expect((await call('POST', `/api/session/${ID}`, { variables: { ['😀'.repeat(256)]: 1 } })).status).toBe(200)
    expect((await call('POST', `/api/session/${ID}`, { variables: { ['😀'.repeat(257)]: 1 } })).body.error.code).toBe('invalid_key')
    expect((await call('POST', `/api/session/${ID}`, { variables: {}, clientId: '😀'.repeat(128), seq: 1 })).status).toBe(200)
    // A lone surrogate is not Unicode text.
    expect((await call('POST', `/api/session/${ID}`, '{"variables":{"a":"\\ud800"}}')).body.error.code).toBe('invalid_patch')
    expect((await call('POST', `/api/session/${ID}`, '{"variables":{"\\udc00":1}}')).body.error.code).toBe('invalid_key')
    expect((await call('POST', `/api/session/${ID}`, '{"variables":{"a":NaN}}')).body.error.code).toBe('invalid_json')
    for (const seq of ['"5"', '1.5', 'true', '0']) {
      expect((await call('POST', `/api/session/${ID}`, `{"variables":{},"clientId":"c","seq":${seq}}`)).body.error.code, seq).toBe(
        'invalid_patch',
      )
    }
    // A run with no body needs no Content-Type; a body of another type is 415.
    const run = (init: RequestInit) => handler(new Request(`http://localhost/api/session/${ID}/run/s`, { method: 'POST', ...init }))
    expect((await run({})).status).toBe(200)
    expect((await run({ body: 'x', headers: { 'content-type': 'text/plain' } })).status).toBe(415)
    // A cross-site HTML form always sends a content type, even with no fields: never a run.
    for (const type of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
      expect((await run({ body: '', headers: { 'content-type': type } })).status, type).toBe(415)
    }
    // Check order: method before session id, session id before step name, step name before the body.
    expect((await call('PUT', '/api/session/bad id')).body.error.code).toBe('method_not_allowed')
    expect((await call('POST', '/api/session/bad id/run/nope', {})).body.error.code).toBe('invalid_session_id')
    expect((await call('POST', `/api/session/${ID}/run/nope`, 'not json', { 'content-type': 'text/plain' })).body.error.code).toBe(
      'unknown_step',
    )
  })

  it('lets a user who signs in adopt the session they started anonymously, explicitly, and nobody else', async () => {
    const { call, handler } = setup({ authorize: (request) => request.headers.get('x-user') })
    const eve = { 'x-user': 'eve' }
    await call('POST', `/api/session/${ID}`, { variables: { draft: 'typed before signing in' } })
    expect((await call('GET', '/api/session', undefined, eve)).body.sessions).toEqual([]) // not hers until she says so
    // A cross-site form signed in as eve (her cookie) cannot adopt it for her: forms send a content type.
    const byForm = await handler(
      new Request(`http://localhost/api/session/${ID}/adopt`, {
        method: 'POST',
        body: '',
        headers: { ...eve, 'content-type': 'application/x-www-form-urlencoded' },
      }),
    )
    expect(byForm.status).toBe(415)
    expect((await call('GET', '/api/session', undefined, eve)).body.sessions).toEqual([])
    expect((await call('POST', `/api/session/${ID}/adopt`)).body.error.code).toBe('unauthenticated')
    const adopted = await call('POST', `/api/session/${ID}/adopt`, undefined, eve)
    expect(adopted.body).toMatchObject({ userId: 'eve', version: 2, variables: { draft: 'typed before signing in' } })
    expect((await call('POST', `/api/session/${ID}/adopt`, undefined, eve)).body.version).toBe(2) // hers already: nothing changes
    expect((await call('GET', '/api/session', undefined, eve)).body.sessions.map((s: { sessionId: string }) => s.sessionId)).toEqual([ID])
    // Now private: anonymous callers and other users find nothing, and cannot adopt it.
    expect((await call('GET', `/api/session/${ID}`)).status).toBe(404)
    expect((await call('GET', `/api/session/${ID}`, undefined, { 'x-user': 'ada' })).status).toBe(404)
    expect((await call('POST', `/api/session/${ID}/adopt`, undefined, { 'x-user': 'ada' })).body.error.code).toBe('not_found')
    expect((await call('POST', '/api/session/never-made-0001/adopt', undefined, eve)).body.error.code).toBe('not_found')
  })

  it('answers an unknown path with 404 and a wrong method with 405, as JSON', async () => {
    const { call } = setup()
    expect((await call('GET', '/elsewhere')).status).toBe(404)
    const put = await call('PUT', `/api/session/${ID}`, {})
    expect(put.body.error.code).toBe('method_not_allowed')
    expect(put.headers.get('allow')).toBe('GET, POST, DELETE')
    expect((await call('GET', `/api/session/${ID}/events?since=-1`)).body.error.code).toBe('bad_request')
    expect((await call('GET', '/api/session/%E0%A4%A')).status).toBe(404)
  })

  it('refuses a change from an origin that is not allowed (403 forbidden_origin), changing nothing', async () => {
    const { call } = setup({ allowedOrigins: ['https://app.example.com'] })
    await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
    const evil = await call('POST', `/api/session/${ID}`, { variables: { a: 666 } }, { origin: 'https://evil.example' })
    expect(evil).toMatchObject({ status: 403, body: { error: { code: 'forbidden_origin' } } })
    expect((await call('DELETE', `/api/session/${ID}`, undefined, { origin: 'https://evil.example' })).status).toBe(403)
    expect((await call('GET', `/api/session/${ID}`, undefined, { origin: 'https://evil.example' })).status).toBe(200)
    expect((await call('POST', `/api/session/${ID}`, { variables: { a: 2 } }, { origin: 'https://app.example.com' })).status).toBe(200)
    expect((await call('GET', `/api/session/${ID}`)).body.variables).toEqual({ a: 2 })
  })

  it('limits keys per patch (413) and nesting depth (400 invalid_patch)', async () => {
    const { call } = setup({ maxKeysPerPatch: 10 })
    await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
    const many = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, i]))
    expect(await call('POST', `/api/session/${ID}`, { variables: many })).toMatchObject({
      status: 413,
      body: { error: { code: 'too_large' } },
    })
    let deep: unknown = 'bottom'
    for (let i = 0; i < 70; i++) deep = [deep]
    const tooDeep = await call('POST', `/api/session/${ID}`, { variables: { deep } })
    expect(tooDeep).toMatchObject({
      status: 400,
      body: { error: { code: 'invalid_patch', message: expect.stringContaining('deeper than 64') } },
    })
    expect((await call('GET', `/api/session/${ID}`)).body).toMatchObject({ version: 1, variables: { a: 1 } })
  })
})

describe('a body read before the handler', () => {
  it('answers the protocol JSON 500 and reports an error that says what happened, not a locked stream', async () => {
    const { handler, errors } = setup()
    const request = new Request(`http://localhost/api/session/${ID}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"variables":{"a":1}}',
    })
    await request.json() // what a framework's body parser does
    const response = await handler(request)
    expect(response.status).toBe(500)
    expect((await response.json()).error.code).toBe('internal_error')
    expect(String(errors[0])).toMatch(/request body was read before the session handler/)
  })
})
