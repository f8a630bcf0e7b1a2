import fc from 'fast-check'
import { http, HttpResponse } from 'msw'
import { afterEach, describe, expect, it } from 'vitest'
import { createSessionClient, memoryLocalCopy, type SessionClient } from '../../src/client/index.js'
import { conformanceSteps } from '../../src/server/index.js'
import type { JsonValue, SessionDelta } from '../../src/shared/protocol.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

// A client that reads deltas (the default) and one that does not, side by side on the real
// handler: every answer applied as a delta gives the same view as the snapshot it replaces.

const mock = setupMockServer(conformanceSteps)
const clients: SessionClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

function makeClient(sessionId: string, deltas: boolean) {
  const client = createSessionClient({ endpoint: ENDPOINT, sessionId, storage: memoryLocalCopy(), locks: null, deltas })
  clients.push(client)
  return client
}

const name = fc.constantFrom('a', 'b', 'c', 'wf:w1:step', 'wf:w1:name')
const op = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), name, value: fc.jsonValue({ maxDepth: 2 }) }),
  fc.record({ kind: fc.constant('delete' as const), name }),
  fc.record({ kind: fc.constant('elsewhere' as const), name, value: fc.string() }),
  fc.record({ kind: fc.constant('run' as const), input: fc.jsonValue({ maxDepth: 1 }) }),
  fc.constant({ kind: 'refresh' as const }),
)

describe('a client that reads deltas', () => {
  it('shows exactly what a client that reads snapshots shows, after any sequence of writes, steps and refreshes', async () => {
    let round = 0
    await fc.assert(
      fc.asyncProperty(fc.array(op, { minLength: 1, maxLength: 10 }), async (ops) => {
        round++
        const pair = [makeClient(`delta-client-${round}-on`, true), makeClient(`delta-client-${round}-off`, false)] as const
        for (const step of ops) {
          for (const client of pair) {
            if (step.kind === 'set') client.set(step.name, step.value)
            else if (step.kind === 'delete') client.delete(step.name)
            else if (step.kind === 'elsewhere') await mock.store.apply(client.sessionId, { variables: { [step.name]: step.value } })
            else if (step.kind === 'run') await client.run('conformance_echo', step.input as JsonValue)
            else await client.refresh()
          }
        }
        await Promise.all(pair.map((client) => client.flush()))
        await Promise.all(pair.map((client) => client.refresh()))
        // Each shows its server's session exactly; the two sessions differ only in the times of their writes.
        for (const client of pair) expect(client.getSnapshot()).toEqual((await mock.store.get(client.sessionId))?.variables ?? {})
        const [on, off] = pair.map((client) =>
          Object.fromEntries(Object.entries(client.getSnapshot()).filter(([key]) => !/^wf:.*:at$/.test(key))),
        )
        expect(on).toEqual(off)
      }),
      { numRuns: 25 },
    )
  })

  it('states the version it holds on every request, and a client with deltas off never does', async () => {
    const seen: Array<[string, string | null]> = []
    const record = ({ request }: { request: Request }) =>
      void seen.push([new URL(request.url).pathname, request.headers.get('session-base')])
    mock.server.events.on('request:start', record)
    const on = makeClient('delta-header-on', true)
    on.set('a', 1)
    await on.flush()
    on.set('b', 2)
    await on.flush()
    await on.refresh()
    const version = (await mock.store.get('delta-header-on'))!
    const tags = seen.filter(([path]) => path.endsWith('/delta-header-on')).map(([, header]) => header)
    expect(tags).toEqual(['0', `1@${version.createdAt}`, `2@${version.createdAt}`])
    const off = makeClient('delta-header-off', false)
    off.set('a', 1)
    await off.flush()
    await off.refresh()
    expect(seen.filter(([path]) => path.endsWith('/delta-header-off')).every(([, header]) => header === null)).toBe(true)
    mock.server.events.removeListener('request:start', record)
  })

  it('applies a delta answer without asking again; one for another base than it stated is never merged: it asks for the session whole', async () => {
    const id = 'delta-wrong-base'
    const client = makeClient(id, true)
    const gets = () => mock.requests.filter((request) => request.method === 'GET' && request.path.endsWith(`/${id}`)).length
    client.set('a', 1)
    await client.flush()
    const before = gets()
    client.set('b', 2)
    await client.flush()
    expect(gets()).toBe(before) // the answer was a delta, applied to version 1
    expect(client.getStatus().version).toBe(2)

    // The next patch is stored, but its answer is a delta from version 1 (not the 2 the client stated).
    mock.server.use(
      http.post(
        `${ENDPOINT}/${id}`,
        async ({ request }) => {
          const patch = (await request.json()) as { variables: Record<string, JsonValue> }
          const { snapshot } = await mock.store.apply(id, { variables: patch.variables })
          const wrong: SessionDelta = { ...snapshot, base: 1, variables: { wrong: true }, deleted: ['a'] }
          return HttpResponse.json(wrong)
        },
        { once: true },
      ),
    )
    client.set('c', 3)
    await client.flush()
    expect(gets()).toBe(before + 1) // asked for the session whole, once
    expect(client.getSnapshot()).toEqual({ a: 1, b: 2, c: 3 })
    expect(client.getStatus()).toMatchObject({ version: 3, isDirty: false })
  })
})
