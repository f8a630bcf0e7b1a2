import fc from 'fast-check'
import { expect, it } from 'vitest'
import { createSessionHandler, memoryStore, StepError } from '../../src/server/index.js'

const SEEDED = 'fuzz-session-1'
const EVES = 'fuzz-eves-session'
const ADA = 'ada'

const hostileKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'polluted',
  '',
  'k'.repeat(257),
  'wf:x:v:y',
  'toString',
  'valueOf',
  'hasOwnProperty',
)
const key = fc.oneof(fc.string({ maxLength: 12 }), hostileKey)
const value = fc.oneof(fc.jsonValue({ maxDepth: 4 }), fc.constant({ __proto__: { polluted: true } }), fc.string({ maxLength: 2000 }))
const patchBody = fc
  .record(
    {
      variables: fc.oneof(fc.dictionary(key, value, { maxKeys: 6 }), fc.jsonValue({ maxDepth: 2 })),
      deleted: fc.oneof(fc.array(key, { maxLength: 4 }), fc.jsonValue({ maxDepth: 1 })),
      clientId: fc.oneof(fc.string({ maxLength: 140 }), fc.integer()),
      seq: fc.oneof(fc.integer(), fc.double(), fc.string()),
      workflowId: fc.oneof(fc.string({ maxLength: 140 }), fc.constant(null)),
      // Fields a patch does not have: the owner comes only from authorize, the rest from the server.
      userId: fc.constantFrom(ADA, 'eve', '', null),
      version: fc.oneof(fc.integer(), fc.string()),
      createdAt: fc.constantFrom('1970-01-01T00:00:00.000Z', 'yesterday'),
      updatedAt: fc.constantFrom('2999-01-01T00:00:00.000Z'),
      sessionId: fc.constantFrom(SEEDED, 'fuzz-other-1'),
    },
    { requiredKeys: [] },
  )
  .chain((patch) =>
    fc.dictionary(fc.string({ maxLength: 10 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }).map((extra) => ({ ...extra, ...patch })),
  )
/** A patch the server accepts, carrying fields that would claim a session if they were trusted. */
const claimingPatch = fc
  .record(
    {
      variables: fc.dictionary(fc.stringMatching(/^[a-z]{1,8}$/), fc.jsonValue({ maxDepth: 2 }), { minKeys: 1, maxKeys: 3 }),
      userId: fc.constantFrom(ADA, 'eve'),
      version: fc.integer(),
      createdAt: fc.constant('1970-01-01T00:00:00.000Z'),
      sessionId: fc.constantFrom(SEEDED, EVES),
    },
    { requiredKeys: ['variables', 'userId'] },
  )
  .map((patch) => JSON.stringify(patch))
/** Raw text: JSON of a patch, any JSON, garbage, prototype-polluting JSON, or nothing. */
const body = fc.oneof(
  claimingPatch,
  patchBody.map((patch) => JSON.stringify(patch)),
  fc.jsonValue({ maxDepth: 3 }).map((json) => JSON.stringify(json)),
  fc.string({ maxLength: 200 }),
  fc.constantFrom(
    '{"variables": {"__proto__": {"polluted": true}}}',
    '{"__proto__": {"polluted": true}, "variables": {"a": 1}}',
    '{"variables": {"constructor": {"prototype": {"polluted": true}}}}',
    '{"variables": {"a": {"__proto__": {"polluted": true}}}}',
    '[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]',
    '{"variables": {"deep": ' + '['.repeat(100) + ']'.repeat(100) + '}}',
    '',
  ),
  fc.integer({ min: 1000, max: 5000 }).map((size) => JSON.stringify({ variables: { big: 'x'.repeat(size) } })),
)
const sessionId = fc.oneof(
  fc.constant(SEEDED),
  fc.constant('fuzz-other-1'),
  fc.constant(EVES),
  fc.string({ maxLength: 140 }),
  fc.constantFrom('..', '%2e%2e', 'a/b', 'short', '%E0%A4%A', '__proto__'),
)
const path = fc.oneof(
  fc.constantFrom(SEEDED, EVES).map((id) => `/api/session/${id}`),
  sessionId.map((id) => `/api/session/${id}`),
  sessionId.map((id) => `/api/session/${id}/run/ok`),
  fc
    .tuple(sessionId, fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom('boom', 'toString', '__proto__', 'constructor')))
    .map(([id, step]) => `/api/session/${id}/run/${encodeURIComponent(step)}`),
  fc.constantFrom('/api/session', '/api/session/', '/api', '/elsewhere'),
)
const request = fc.record({
  method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT', 'PATCH'),
  path,
  contentType: fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'text/plain',
    'application/x-www-form-urlencoded',
    undefined,
  ),
  body,
  user: fc.constantFrom(ADA, 'eve', undefined),
})

it("never answers 500 (but for a failing step), never changes a session on an error, never pollutes a prototype, never lets a caller reach another's session", async () => {
  const store = memoryStore()
  const handler = createSessionHandler({
    store,
    maxBytes: 4096,
    authorize: (req) => req.headers.get('x-user'),
    onError: () => {},
    steps: {
      ok: ({ input }) => ({ output: input ?? null, variables: { ran: true } }),
      boom: () => {
        throw new StepError('boom')
      },
    },
  })
  await store.create(SEEDED, { variables: { kept: 1 }, userId: ADA })
  await store.create(EVES, { variables: { kept: 2 }, userId: 'eve' })
  let tried = 0

  await fc.assert(
    fc.asyncProperty(request, async ({ method, path: target, contentType, body: text, user }) => {
      tried++
      const before = await store.get(SEEDED)
      const targetId = /^\/api\/session\/([A-Za-z0-9_-]{8,128})(\/|$)/.exec(target)?.[1]
      const targetBefore = targetId === undefined ? null : await store.get(targetId)
      const headers: Record<string, string> = {}
      if (contentType) headers['content-type'] = contentType
      if (user) headers['x-user'] = user
      let url: URL
      try {
        url = new URL(`http://localhost${target}`)
      } catch {
        return // not a URL a client could send
      }
      const response = await handler(new Request(url, { method, headers, ...(method !== 'GET' && { body: text }) }))
      const answer = await response.text()
      const parsed = answer ? JSON.parse(answer) : undefined // every answer is JSON (or empty: 204)

      if (response.status >= 400) {
        expect(parsed.error.code).toEqual(expect.any(String))
        expect(parsed.error.message).toEqual(expect.any(String))
        if (response.status === 500) expect(parsed.error.code).toBe('step_failed')
        expect(await store.get(SEEDED)).toEqual(before) // an error changed nothing
      }
      // While Ada's session exists, nobody else gets anything but 404 for it (once Ada deletes
      // it, the id is free and anyone may start a new session under it).
      if (before?.userId === ADA && user !== ADA && response.status < 400 && target.includes(SEEDED)) {
        throw new Error(`another user reached the seeded session: ${method} ${target} → ${response.status}`)
      }
      if (targetId !== undefined) {
        const owner = targetBefore?.userId
        if (owner !== undefined && owner !== user && response.status < 400) {
          throw new Error(`${user ?? 'an anonymous caller'} reached ${owner}'s session: ${method} ${target} → ${response.status}`)
        }
        // The owner is whoever first wrote, as authorize said: never a body's userId, and it never changes.
        const after = await store.get(targetId)
        if (after && targetBefore) expect(after.userId).toBe(targetBefore.userId)
        if (after && !targetBefore) expect(after.userId).toBe(user)
      }
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
      expect(Object.keys(Object.prototype)).toEqual([])
    }),
    { numRuns: 3000 },
  )
  expect(tried).toBeGreaterThanOrEqual(3000)
}, 120_000)

const runId = fc.oneof(
  fc.constantFrom('run-fuzz-0001', 'run-fuzz-0002', 'run-eves-0001'),
  fc.string({ maxLength: 140 }),
  fc.constantFrom('short', '__proto__', 'constructor', '..', '%2e%2e', 'a/b'),
)
const runStart = fc
  .record(
    {
      runId,
      step: fc.oneof(fc.constantFrom('ok', 'boom', 'toString', '__proto__', 'constructor', ''), fc.string({ maxLength: 20 }), fc.integer()),
      input: value,
    },
    { requiredKeys: [] },
  )
  .map((start) => JSON.stringify(start))
const runPath = fc.oneof(
  sessionId.map((id) => `/api/session/${id}/runs`),
  fc.tuple(sessionId, runId).map(([id, run]) => `/api/session/${id}/runs/${encodeURIComponent(run)}`),
  fc.tuple(sessionId, runId).map(([id, run]) => `/api/session/${id}/runs/${encodeURIComponent(run)}/cancel`),
  fc
    .tuple(sessionId, runId, fc.string({ maxLength: 12 }))
    .map(([id, run, query]) => `/api/session/${id}/runs/${encodeURIComponent(run)}?${query}`),
  fc
    .tuple(sessionId, fc.constantFrom('waitMs=0', 'waitMs=99999', 'waitMs=-1', 'waitMs=abc', 'after=1&waitMs=5'))
    .map(([id, query]) => `/api/session/${id}/runs?${query}`),
)

it("the run endpoints never answer 500 (but for a failing step), never pollute a prototype, and never let a caller see, start or cancel another's run", async () => {
  // A run whose server stopped answering ends lost when read: not within this test.
  const store = memoryStore({ runLostAfterMs: 10 * 60_000 })
  const handler = createSessionHandler({
    store,
    maxBytes: 4096,
    authorize: (req) => req.headers.get('x-user'),
    onError: () => {},
    log: () => {},
    // Steps that change no variable: a run ending in the background changes nothing the checks compare.
    steps: {
      ok: ({ input }) => ({ output: input ?? null }),
      boom: () => {
        throw new StepError('boom')
      },
    },
  })
  await store.create(SEEDED, { variables: { kept: 1 }, userId: ADA })
  await store.startRun(SEEDED, { runId: 'run-fuzz-0001', step: 'ok' })
  /** Who ended Ada's run, once it is ended (by a cancel): only Ada may. */
  let endedBy: string | undefined | null = null

  await fc.assert(
    fc.asyncProperty(
      fc.record({
        method: fc.constantFrom('GET', 'POST', 'DELETE', 'PUT'),
        path: runPath,
        body: fc.oneof(runStart, body),
        user: fc.constantFrom(ADA, 'eve', undefined),
      }),
      async ({ method, path: target, body: text, user }) => {
        let url: URL
        try {
          url = new URL(`http://localhost${target}`)
        } catch {
          return
        }
        const headers: Record<string, string> = { 'content-type': 'application/json', ...(user && { 'x-user': user }) }
        // Ada may delete her session (a DELETE of `…/runs/..` is one of the session, once the URL is read):
        // an id she no longer holds is anyone's to make again, and then to read.
        const adas = (await store.get(SEEDED))?.userId === ADA
        const response = await handler(new Request(url, { method, headers, ...(method !== 'GET' && { body: text }) }))
        const answer = await response.text()
        const parsed = answer ? JSON.parse(answer) : undefined
        if (response.status >= 400) {
          expect(parsed.error.code).toEqual(expect.any(String))
          if (response.status === 500) expect(parsed.error.code).toBe('step_failed')
        }
        if (adas && url.pathname.startsWith(`/api/session/${SEEDED}/`) && user !== ADA && response.status < 400) {
          throw new Error(`${user ?? 'an anonymous caller'} reached Ada's runs: ${method} ${target} → ${response.status}`)
        }
        // Ada's run is ended by no one but Ada (or is gone with her session, which only she may delete).
        const now = await store.getRun(SEEDED, 'run-fuzz-0001')
        if (now && now.status !== 'running' && endedBy === null) endedBy = user
        if (endedBy !== null) expect(endedBy).toBe(ADA)
        expect(({} as Record<string, unknown>).polluted).toBeUndefined()
        expect(Object.keys(Object.prototype)).toEqual([])
      },
    ),
    { numRuns: 1500 },
  )
  await handler.close()
}, 120_000)
