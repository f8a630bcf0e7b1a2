import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { conformanceSteps, createSessionHandler, defineStore, memoryStore, type SessionStore } from '../../src/server/index.js'
import { applyPlan, emptySession, type StoredSession } from '../../src/server/stores/stored.js'
import { applyDelta, applyRunDelta, isDelta, tagOf } from '../../src/shared/delta.js'
import type { RunDelta, RunRecord, SessionDelta, SessionSnapshot } from '../../src/shared/protocol.js'
import { kinds, openKind } from './store-kinds.js'

// Deltas (docs/protocol.md, "Deltas"), through the handler, on every store: a client that
// applies each answer to the snapshot it holds has exactly the server's snapshot.

const ORIGIN = 'http://localhost'
const ID = 'delta-session-1'

function harness(store: SessionStore) {
  const handler = createSessionHandler({ store, steps: conformanceSteps, onError: () => {}, log: () => {} })
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const response = await handler(
      new Request(`${ORIGIN}/api/session/${path}`, {
        method,
        headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers },
        ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
      }),
    )
    const text = await response.text()
    return {
      status: response.status,
      text,
      body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
      headers: response.headers,
    }
  }
  /** The session as a client without deltas gets it. */
  const whole = async (id = ID) => (await call('GET', id)).body as unknown as SessionSnapshot
  return { handler, call, whole }
}

const baseHeader = (held: SessionSnapshot | null) => ({ 'session-base': held && held.version > 0 ? tagOf(held) : '0' })

/** What a client does with an answer: a delta applied to what it holds (it must fit), a snapshot taken. */
function take(held: SessionSnapshot | null, body: SessionSnapshot | SessionDelta): SessionSnapshot {
  if (!isDelta(body)) return body
  expect(held, 'a delta came for a client that holds nothing').not.toBeNull()
  const next = applyDelta(held!, body)
  expect(next, `a delta from ${body.base} for a client at ${held!.version}`).not.toBeNull()
  return next!
}

const name = fc.constantFrom('a', 'b', 'c', 'd', 'wf:w1:step', 'wf:w1:name', 'long')
const op = fc.oneof(
  fc.record({ kind: fc.constant('patch' as const), variables: fc.dictionary(name, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 3 }) }),
  fc.record({ kind: fc.constant('delete' as const), names: fc.uniqueArray(name, { maxLength: 2 }) }),
  fc.record({ kind: fc.constant('step' as const), input: fc.jsonValue({ maxDepth: 1 }) }),
  fc.record({ kind: fc.constant('other' as const), variables: fc.dictionary(name, fc.string(), { minKeys: 1, maxKeys: 2 }) }),
  fc.constant({ kind: 'get' as const }),
)

describe.each(kinds)('deltas on the $name store', (kind) => {
  it('answers the session whole, never a delta, for a base of another lineage or above the current version', async () => {
    const { store } = await openKind(kind)
    const { call, whole } = harness(store)
    const id = 'delta-lineage-1'
    await call('POST', id, { variables: { a: 1, b: 1 } })
    await call('POST', id, { variables: { a: 2 } })
    const old = await whole(id)
    expect((await call('DELETE', id)).status).toBe(204)
    await new Promise((resolve) => setTimeout(resolve, 5)) // another createdAt
    for (const value of [1, 2, 3]) await call('POST', id, { variables: { c: value } })
    const current = await whole(id)
    for (const held of [old, { ...current, version: current.version + 5 }]) {
      const answer = await call('GET', id, undefined, baseHeader(held))
      expect(answer.status).toBe(200)
      expect(answer.body).not.toHaveProperty('base')
      expect(answer.body).toEqual(current)
    }
  })

  it('gives a client that applies every answer exactly the snapshot a client without deltas gets', async () => {
    const { store } = await openKind(kind)
    const { call, whole } = harness(store)
    let round = 0
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 12 }), async (ops) => {
        const id = `delta-prop-${++round}`
        let held: SessionSnapshot | null = null
        let seq = 0
        for (const step of ops) {
          const headers = baseHeader(held)
          if (step.kind === 'patch' || step.kind === 'delete') {
            const patch = step.kind === 'patch' ? { variables: step.variables } : { deleted: step.names }
            const answer = await call('POST', id, { ...patch, clientId: 'me', seq: ++seq }, headers)
            expect(answer.status).toBe(200)
            held = take(held, answer.body as unknown as SessionSnapshot | SessionDelta)
          } else if (step.kind === 'step') {
            const answer = await call('POST', `${id}/run/conformance_echo`, { input: step.input }, headers)
            expect(answer.status).toBe(200)
            held = take(held, answer.body!.session as SessionSnapshot | SessionDelta)
          } else if (step.kind === 'other') {
            // Another client's change: this one learns it on its next answer.
            expect((await call('POST', id, { variables: step.variables })).status).toBe(200)
          } else {
            const answer = await call('GET', id, undefined, headers)
            if (answer.status === 304) expect(held && tagOf(held)).toBe(tagOf(await whole(id)))
            else if (answer.status === 200) held = take(held, answer.body as unknown as SessionSnapshot | SessionDelta)
            else expect(answer.status).toBe(404)
          }
          if (held && held.version > 0) {
            const server = await whole(id)
            // The client may be behind (another client wrote since), never different at its own version.
            if (server.version === held.version) expect(held).toEqual(server)
          }
        }
        const last = await call('GET', id, undefined, baseHeader(held))
        if (last.status === 200) held = take(held, last.body as unknown as SessionSnapshot | SessionDelta)
        if (held && held.version > 0) expect(held).toEqual(await whole(id))
      }),
      { numRuns: kind.name === 'postgres' ? 15 : 30 },
    )
  })

  it('answers a one-key patch on a large session with the change, not the session', async () => {
    const { store } = await openKind(kind)
    const { call, whole } = harness(store)
    for (let batch = 0; batch < 2; batch++) {
      const variables = Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`v${batch * 1000 + i}`, `value ${i}`]))
      expect((await call('POST', ID, { variables })).status).toBe(200)
    }
    const held = await whole()
    const answer = await call('POST', ID, { variables: { v1: 'changed' } }, baseHeader(held))
    expect(answer.body).toMatchObject({ base: held.version, version: held.version + 1, variables: { v1: 'changed' }, deleted: [] })
    expect(answer.text.length).toBeLessThan(300)
    expect(take(held, answer.body as unknown as SessionDelta)).toEqual(await whole())
  })
})

describe('deltas through the handler', () => {
  it('answers a GET from a client that holds the current version 304 with no body, by Session-Base or by If-None-Match', async () => {
    const { call, whole } = harness(memoryStore())
    await call('POST', ID, { variables: { a: 1 } })
    const held = await whole()
    const got = await call('GET', ID)
    expect(got.headers.get('etag')).toBe(`"${tagOf(held)}"`)
    const current = await call('GET', ID, undefined, baseHeader(held))
    expect(current).toMatchObject({ status: 304, text: '' })
    expect((await call('GET', ID, undefined, { 'if-none-match': `"${tagOf(held)}"` })).status).toBe(304)
    expect((await call('GET', ID, undefined, { 'if-none-match': '"1@2020-01-01T00:00:00.000Z"' })).status).toBe(200)
    await call('POST', ID, { variables: { b: 2 } })
    const changed = await call('GET', ID, undefined, baseHeader(held))
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({ base: 1, version: 2, variables: { b: 2 }, deleted: [] })
  })

  it('answers 304 to a caller at the current version of a backend that keeps no change log (and the session whole to any other)', async () => {
    // A store of the app's own, on a backend that hands the session over without its change log.
    const sessions = new Map<string, StoredSession>()
    const withoutLog = (stored: StoredSession | undefined) => (stored ? { head: stored.head, entries: stored.entries } : null)
    const store = defineStore({
      read: async (sessionId, use) => use(withoutLog(sessions.get(sessionId))),
      async update(sessionId, _names, decide, view) {
        let stored = sessions.get(sessionId)
        const write = decide(stored ? { head: stored.head, sizeOf: () => undefined } : null, { run: undefined, running: [] })
        if (write?.head === null) sessions.delete(sessionId)
        else if (write?.head) {
          if (!stored) sessions.set(sessionId, (stored = emptySession(write.head)))
          applyPlan(stored, write.head, write)
        }
        return view(withoutLog(sessions.get(sessionId)))
      },
      runs: async () => [],
      list: async () => [],
      async *ids() {},
      purgeExpired: async () => 0,
      close: async () => {},
    })
    const { call, whole } = harness(store)
    await call('POST', ID, { variables: { a: 1 } })
    const held = await whole()
    expect(await call('GET', ID, undefined, baseHeader(held))).toMatchObject({ status: 304, text: '' })
    await call('POST', ID, { variables: { b: 2 } })
    const changed = await call('GET', ID, undefined, baseHeader(held))
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({ version: 2, variables: { a: 1, b: 2 } })
    expect(changed.body).not.toHaveProperty('base')
  })

  it('answers a client without Session-Base exactly as before: snapshots', async () => {
    const { call } = harness(memoryStore())
    const first = await call('POST', ID, { variables: { a: 1 } })
    const second = await call('POST', ID, { variables: { b: 2 } })
    expect(first.body).not.toHaveProperty('base')
    expect(second.body).toMatchObject({ variables: { a: 1, b: 2 }, version: 2 })
    expect(second.body).not.toHaveProperty('base')
  })

  it('answers a snapshot, never a delta, for a base of another lineage (the session deleted and made again)', async () => {
    const { call, whole } = harness(memoryStore())
    await call('POST', ID, { variables: { a: 1, b: 1 } })
    await call('POST', ID, { variables: { a: 2 } })
    const old = await whole()
    expect((await call('DELETE', ID)).status).toBe(204)
    await new Promise((resolve) => setTimeout(resolve, 5)) // another createdAt
    await call('POST', ID, { variables: { c: 1 } })
    await call('POST', ID, { variables: { c: 2 } })
    await call('POST', ID, { variables: { c: 3 } })
    const answer = await call('GET', ID, undefined, baseHeader(old))
    expect(answer.status).toBe(200)
    expect(answer.body).not.toHaveProperty('base')
    expect(answer.body).toMatchObject({ variables: { c: 3 }, version: 3 })
  })

  it('answers a snapshot for a base older than the changes the server still knows of', async () => {
    const { call, whole } = harness(memoryStore())
    await call('POST', ID, { variables: { keep: 1 } })
    const old = await whole()
    // More names changed since than the change log holds (1024).
    for (let batch = 0; batch < 3; batch++)
      await call('POST', ID, { variables: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`n${batch}-${i}`, i])) })
    const answer = await call('GET', ID, undefined, baseHeader(old))
    expect(answer.body).not.toHaveProperty('base')
    expect(answer.body).toEqual(await whole())
  })

  it('refuses a Session-Base that is neither 0 nor a tag: 400 bad_request, nothing changed', async () => {
    const { call, whole } = harness(memoryStore())
    await call('POST', ID, { variables: { a: 1 } })
    for (const bad of ['7', 'x@y', '1@2026-11-21', '-1@2026-11-21T04:00:00.000Z', '1234567890123456@2026-11-21T04:00:00.000Z']) {
      const answer = await call('POST', ID, { variables: { a: 2 } }, { 'session-base': bad })
      expect(answer.status, bad).toBe(400)
      expect(answer.body).toEqual({ error: { code: 'bad_request', message: expect.any(String) } })
    }
    // Checked before the body and before anything runs: a step with a bad base never runs.
    const ran = await call('POST', `${ID}/run/conformance_echo`, { input: 'x' }, { 'session-base': 'nonsense' })
    expect(ran.body).toMatchObject({ error: { code: 'bad_request' } })
    const started = await call('POST', `${ID}/runs`, { runId: 'never-started', step: 'conformance_echo' }, { 'session-base': 'nonsense' })
    expect(started.status).toBe(400)
    expect((await whole()).variables).toEqual({ a: 1 })
    expect((await call('GET', `${ID}/runs/never-started`)).status).toBe(404)
    expect((await call('GET', ID, undefined, { 'session-base': 'nonsense' })).status).toBe(400)
    // Before the body's own checks, as the protocol's order says.
    const both = await call('POST', ID, '{not json', { 'session-base': 'nonsense' })
    expect(both.body).toMatchObject({ error: { code: 'bad_request' } })
  })

  it('answers a replayed patch with an empty delta for a client that holds the current version', async () => {
    const { call, whole } = harness(memoryStore())
    await call('POST', ID, { variables: { a: 1 }, clientId: 'c', seq: 1 })
    const held = await whole()
    const replay = await call('POST', ID, { variables: { a: 1 }, clientId: 'c', seq: 1 }, baseHeader(held))
    expect(replay.body).toEqual({ ...held, variables: {}, deleted: [], base: held.version })
  })

  it('answers runs with run deltas for a client that holds an earlier rev, and their session as a delta', async () => {
    const { call, whole } = harness(memoryStore())
    await call('POST', ID, { variables: { before: true } })
    const held = await whole()
    const started = await call(
      'POST',
      `${ID}/runs`,
      { runId: 'run-delta-1', step: 'conformance_echo', input: { sleepMs: 400 } },
      baseHeader(held),
    )
    expect(started.status).toBe(202)
    let record = started.body!.run as RunRecord
    expect(record).toMatchObject({ rev: 1, input: { sleepMs: 400 }, step: 'conformance_echo' })
    // A long poll from rev 1: what changed (progress), without the fields that never change.
    const polled = await call('GET', `${ID}/runs/run-delta-1?after=1&waitMs=5000`, undefined, baseHeader(held))
    const delta = polled.body!.run as RunDelta
    expect(delta).toMatchObject({ runId: 'run-delta-1', base: 1, status: 'running' })
    expect(delta.rev).toBeGreaterThan(1)
    expect(Object.keys(delta).sort()).toEqual(['base', 'heartbeatAt', 'progress', 'rev', 'runId', 'status'])
    record = applyRunDelta(record, delta)!
    // Until its end.
    while (record.status === 'running') {
      const next = await call('GET', `${ID}/runs/run-delta-1?after=${record.rev}&waitMs=5000`, undefined, baseHeader(held))
      record = applyRunDelta(record, next.body!.run as RunDelta)!
      if (record.status === 'succeeded') {
        const session = take(held, next.body!.session as SessionDelta)
        expect(next.body!.session).toHaveProperty('base', held.version)
        expect(session).toEqual(await whole())
      }
    }
    const full = (await call('GET', `${ID}/runs/run-delta-1`)).body!.run as RunRecord
    expect(record).toEqual(full)
    // Without Session-Base, the long poll answers the record whole, as before.
    expect((await call('GET', `${ID}/runs/run-delta-1?after=1`)).body!.run).toEqual(full)
  })
})
