import pg from 'pg'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { startServerProcess } from '../../bench/server.js'
import { createSessionClient, liveUpdates, memoryLocalCopy } from '../../src/client/index.js'
import { applyDelta, tagOf } from '../../src/shared/delta.js'
import type { SessionDelta, SessionSnapshot } from '../../src/shared/protocol.js'
import { DATABASE_URL } from '../postgres.js'
import { openEvents } from './helpers.js'

// Two app servers, each a process of its own, sharing one PostgreSQL database of this test.
const database = `ws_test_many_${process.pid}`
const url = Object.assign(new URL(DATABASE_URL), { pathname: `/${database}` }).href
let servers: Array<Awaited<ReturnType<typeof startServerProcess>>> = []

async function admin(sql: string) {
  const client = new pg.Client({ connectionString: DATABASE_URL })
  await client.connect()
  try {
    await client.query(sql)
  } finally {
    await client.end()
  }
}

beforeAll(async () => {
  await admin(`DROP DATABASE IF EXISTS ${database}`)
  await admin(`CREATE DATABASE ${database}`)
  // One first, so that the schema is made once; then the second.
  servers = [await startServerProcess(url)]
  servers.push(await startServerProcess(url))
}, 60_000)
afterAll(async () => {
  await Promise.all(servers.map((server) => server.close()))
  await admin(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
})

it('a write through server A reaches a client subscribed through server B within one second', async () => {
  const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]]
  const watcher = createSessionClient({
    endpoint: `${b.url}/api/session`,
    sessionId: 'many-servers-live',
    storage: memoryLocalCopy(),
    locks: null,
    plugins: [liveUpdates()],
  })
  await watcher.start()
  await new Promise((resolve) => setTimeout(resolve, 200)) // the stream is open
  const writer = createSessionClient({
    endpoint: `${a.url}/api/session`,
    sessionId: 'many-servers-live',
    storage: memoryLocalCopy(),
    locks: null,
  })
  for (const value of ['first', 'second', 'third']) {
    writer.set('news', value)
    await writer.flush()
    const confirmedAt = performance.now()
    await vi.waitFor(() => expect(watcher.get('news')).toBe(value), { timeout: 1000, interval: 2 })
    expect(performance.now() - confirmedAt).toBeLessThan(1000)
  }
  await Promise.all([watcher.stop(), writer.stop()])
})

it('a change through server A reaches a stream of deltas on server B as a delta from the version before', async () => {
  const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]]
  const id = 'many-servers-deltas'
  const post = (body: unknown) =>
    fetch(`${a.url}/api/session/${id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  await post({ variables: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`v${i}`, `a value of some length ${i}`])) })
  const held = (await (await fetch(`${b.url}/api/session/${id}`)).json()) as SessionSnapshot
  const stream = await openEvents(`${b.url}/api/session/${id}/events`, { 'session-base': tagOf(held) })
  await new Promise((resolve) => setTimeout(resolve, 200)) // the stream is open
  await post({ variables: { v7: 'changed' }, deleted: ['v8'] })
  await vi.waitFor(() => expect(stream.events.length).toBeGreaterThan(0), { timeout: 2000, interval: 5 })
  await stream.close()
  const [event] = stream.events
  expect(event).toMatchObject({
    event: 'delta',
    data: { base: held.version, version: held.version + 1, variables: { v7: 'changed' }, deleted: ['v8'] },
  })
  expect(event!.id).toBe(`${held.version + 1}@${held.createdAt}`)
  expect(event!.bytes).toBeLessThan(300)
  const server = (await (await fetch(`${a.url}/api/session/${id}`)).json()) as SessionSnapshot
  expect(applyDelta(held, event!.data as unknown as SessionDelta)).toEqual(server)
})

it('a watcher on server B that missed versions catches up with one delta, or one snapshot for another lineage, never a wrong merge', async () => {
  const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]]
  const id = 'many-servers-missed'
  const sessionUrl = (server: typeof a) => `${server.url}/api/session/${id}`
  const post = (body: unknown) =>
    fetch(sessionUrl(a), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  const firstEvent = async (held: SessionSnapshot) => {
    const stream = await openEvents(`${sessionUrl(b)}/events`, { 'session-base': tagOf(held) })
    await vi.waitFor(() => expect(stream.events.length).toBeGreaterThan(0), { timeout: 2000, interval: 5 })
    await new Promise((resolve) => setTimeout(resolve, 100)) // nothing else comes for what it missed
    await stream.close()
    return stream.events
  }
  await post({ variables: { a: 1, b: 1, c: 1 } })
  const held = (await (await fetch(sessionUrl(b))).json()) as SessionSnapshot
  // Three versions written through A while the watcher on B was away.
  await post({ variables: { a: 2 } })
  await post({ deleted: ['b'] })
  await post({ variables: { d: 4 } })
  const server = (await (await fetch(sessionUrl(a))).json()) as SessionSnapshot
  const caughtUp = await firstEvent(held)
  expect(caughtUp).toHaveLength(1)
  expect(caughtUp[0]).toMatchObject({ event: 'delta', data: { base: held.version, version: held.version + 3 } })
  expect(applyDelta(held, caughtUp[0]!.data as unknown as SessionDelta)).toEqual(server)

  // The session deleted and made again through A: what B's watcher held is of another lineage.
  await new Promise((resolve) => setTimeout(resolve, 5)) // a new createdAt
  expect((await fetch(sessionUrl(a), { method: 'DELETE' })).status).toBe(204)
  await post({ variables: { a: 'new' } })
  await post({ variables: { e: 5 } })
  const again = await firstEvent(server)
  expect(again).toHaveLength(1)
  expect(again[0]).toMatchObject({ event: 'snapshot', data: { version: 2, variables: { a: 'new', e: 5 } } })
  expect(again[0]!.data).not.toHaveProperty('base')
})

it('64 clients × 50 patches spread over both servers: no key lost, version exactly 3200', async () => {
  const sessionId = 'many-servers-burst'
  await Promise.all(
    Array.from({ length: 64 }, async (_, client) => {
      const server = servers[client % 2]!
      for (let seq = 1; seq <= 50; seq++) {
        const response = await fetch(`${server.url}/api/session/${sessionId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ variables: { [`c${client}-p${seq}`]: seq }, clientId: `client-${client}`, seq }),
        })
        expect(response.status).toBe(200)
        await response.arrayBuffer()
      }
    }),
  )
  const snapshot = await (await fetch(`${servers[0]!.url}/api/session/${sessionId}`)).json()
  expect(snapshot.version).toBe(3200)
  expect(Object.keys(snapshot.variables)).toHaveLength(3200)
}, 120_000)

it('a run started through server A is watched and cancelled through server B', async () => {
  const [a, b] = servers as [(typeof servers)[0], (typeof servers)[0]]
  const sessionId = 'many-servers-run'
  const client = (url: string) =>
    createSessionClient({
      endpoint: `${url}/api/session`,
      sessionId,
      storage: memoryLocalCopy(),
      locks: null,
      retry: { baseMs: 50, maxMs: 200 },
    })
  const onA = client(a.url)
  const onB = client(b.url)
  await onA.start()
  await onB.start()
  onA.set('kept', 1)
  const started = await onA.startRun('conformance_echo', { sleepMs: 30_000 })
  // B follows it: its progress arrives through B's long polls.
  await expect
    .poll(async () => ((await onB.refreshRuns())[0]?.progress as { slept?: number } | null)?.slept ?? 0, { timeout: 10_000 })
    .toBeGreaterThan(0)
  const waiting = onA.watchRun(started.runId)
  const cancelled = await onB.cancelRun(started.runId)
  expect(cancelled.status).toBe('cancelled')
  expect(await waiting).toMatchObject({ status: 'cancelled' })
  // A's step sees the cancel at its next heartbeat (within 5 s) and stops: nothing is merged.
  await new Promise((resolve) => setTimeout(resolve, 6000))
  expect((await onB.refresh())?.variables).toEqual({ kept: 1 })
  await onA.stop()
  await onB.stop()
}, 60_000)
