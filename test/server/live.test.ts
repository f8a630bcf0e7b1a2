import { afterEach, describe, expect, it, vi } from 'vitest'
import { createSessionClient, liveUpdates, memoryLocalCopy, type SessionClient, type SessionClientOptions } from '../../src/client/index.js'
import {
  conformanceSteps,
  createSessionHandler,
  memoryStore,
  type RunningServer,
  serve,
  type SessionStore,
} from '../../src/server/index.js'
import { applyDelta, applyRunDelta, tagOf } from '../../src/shared/delta.js'
import type { RunDelta, RunRecord, SessionDelta, SessionSnapshot } from '../../src/shared/protocol.js'
import { openEvents } from './helpers.js'

const clients: SessionClient[] = []
const servers: RunningServer[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

async function start(store: SessionStore, port = 0) {
  const server = await serve({ handler: createSessionHandler({ store, authorize: (request) => request.headers.get('x-user') }), port })
  servers.push(server)
  return server
}
function client(server: RunningServer, sessionId: string, options: SessionClientOptions = {}) {
  const made = createSessionClient({
    endpoint: `${server.url}/api/session`,
    sessionId,
    storage: memoryLocalCopy(),
    locks: null,
    retry: { baseMs: 20, maxMs: 200 },
    ...options,
  })
  clients.push(made)
  return made
}

describe('live changes', () => {
  it('shows a change made by another client without a reload, under local edits that are still pending', async () => {
    const server = await start(memoryStore())
    const watcher = client(server, 'live-session-1', { plugins: [liveUpdates()] })
    await watcher.start()
    watcher.set('mine', 'typing…') // pending, never sent: it must stay on top
    const writer = client(server, 'live-session-1')
    writer.set('theirs', 'from another device')
    const sentAt = Date.now()
    await writer.flush()
    await vi.waitFor(() => expect(watcher.get('theirs')).toBe('from another device'), { timeout: 1000, interval: 5 })
    expect(Date.now() - sentAt).toBeLessThan(1000)
    expect(watcher.get('mine')).toBe('typing…')
    expect(watcher.getStatus().pendingKeys).toEqual(['mine'])
  })

  it("streams another user's session exactly like an unused id: keep-alives, never its data; 401 without a user when required", async () => {
    const store = memoryStore()
    await store.create('live-owned-1', { variables: { secret: 'ada-only' }, userId: 'ada' })
    const server = await start(store)
    /** Status, headers and the first 300 ms of the stream, as eve sees them. */
    const seen = async (sessionId: string) => {
      const abort = new AbortController()
      const response = await fetch(`${server.url}/api/session/${sessionId}/events`, { headers: { 'x-user': 'eve' }, signal: abort.signal })
      const reader = response.body!.getReader()
      let text = ''
      const until = Date.now() + 300
      while (Date.now() < until) {
        const chunk = await Promise.race([
          reader.read(),
          new Promise<null>((resolve) => setTimeout(() => resolve(null), until - Date.now())),
        ])
        if (!chunk || chunk.done) break
        text += new TextDecoder().decode(chunk.value)
      }
      abort.abort()
      const headers = [...response.headers].filter(([name]) => name !== 'date')
      return { status: response.status, headers, text }
    }
    const theirs = await seen('live-owned-1')
    // ada writes while eve listens: still nothing for eve.
    const listening = seen('live-owned-1')
    await new Promise((resolve) => setTimeout(resolve, 50))
    await store.apply('live-owned-1', { variables: { secret: 'still ada-only' } })
    const duringWrite = await listening
    const unused = await seen('live-unused-1')
    expect(theirs).toEqual(unused)
    expect(duringWrite).toEqual(unused)
    expect(unused.status).toBe(200)
    expect(unused.text).toBe(': connected\n\n')

    const strict = await serve({ handler: createSessionHandler({ store, authorize: () => null, requireUser: true }), port: 0 })
    servers.push(strict)
    expect((await fetch(`${strict.url}/api/session/live-owned-1/events`)).status).toBe(401)
  })

  it('reconnects after the server went away and catches up by version', async () => {
    const store = memoryStore() // the shared database, in this test
    const first = await start(store)
    const port = Number(new URL(first.url).port)
    const watcher = client(first, 'live-session-2', { plugins: [liveUpdates()] })
    await watcher.start()
    const writer = client(first, 'live-session-2')
    writer.set('n', 1)
    await writer.flush()
    await vi.waitFor(() => expect(watcher.get('n')).toBe(1))

    await first.close() // streams end, the watcher retries
    servers.splice(servers.indexOf(first), 1)
    await store.apply('live-session-2', { variables: { n: 2 } }) // a change while it was away
    await start(store, port) // back on the same address
    await vi.waitFor(() => expect(watcher.get('n')).toBe(2), { timeout: 5000, interval: 10 })
  })
})

describe('live changes as deltas', () => {
  const post = (server: RunningServer, id: string, body: unknown) =>
    fetch(`${server.url}/api/session/${id}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    })
  const snapshotOf = async (server: RunningServer, id: string) =>
    (await (await fetch(`${server.url}/api/session/${id}`)).json()) as SessionSnapshot

  it('streams deltas with tag ids from a tag (Session-Base or Last-Event-ID), and snapshots from a plain version as before', async () => {
    const server = await start(memoryStore())
    await post(server, 'live-delta-1', { variables: { a: 1, b: 'x'.repeat(2000) } })
    const held = await snapshotOf(server, 'live-delta-1')
    const url = `${server.url}/api/session/live-delta-1/events`
    const byHeader = await openEvents(url, { 'session-base': tagOf(held) })
    const byLastEventId = await openEvents(url, { 'last-event-id': tagOf(held) })
    const byVersion = await openEvents(url, { 'last-event-id': String(held.version) })
    await new Promise((resolve) => setTimeout(resolve, 100))
    await post(server, 'live-delta-1', { variables: { a: 2 } })
    await post(server, 'live-delta-1', { deleted: ['a'] })
    const streams = [byHeader, byLastEventId, byVersion]
    await vi.waitFor(() => expect(streams.every((stream) => stream.events.length === 2)).toBe(true), { timeout: 2000, interval: 5 })
    await Promise.all(streams.map((stream) => stream.close()))
    for (const stream of [byHeader, byLastEventId]) {
      const [first, second] = stream.events
      expect(first).toMatchObject({
        event: 'delta',
        id: `2@${held.createdAt}`,
        data: { base: 1, version: 2, variables: { a: 2 }, deleted: [] },
      })
      expect(second).toMatchObject({
        event: 'delta',
        id: `3@${held.createdAt}`,
        data: { base: 2, version: 3, variables: {}, deleted: ['a'] },
      })
      const last = applyDelta(applyDelta(held, first!.data as unknown as SessionDelta)!, second!.data as unknown as SessionDelta)
      expect(last).toEqual(await snapshotOf(server, 'live-delta-1'))
      expect(first!.bytes).toBeLessThan(250)
    }
    expect(byVersion.events.map((event) => [event.event, event.id])).toEqual([
      ['snapshot', '2'],
      ['snapshot', '3'],
    ])
    expect(byVersion.events[1]!.data).toEqual(await snapshotOf(server, 'live-delta-1'))
  })

  it('sends a run whole the first time and as run deltas after, on a stream of deltas', async () => {
    const server = await serve({ handler: createSessionHandler({ store: memoryStore(), steps: conformanceSteps }), port: 0 })
    servers.push(server)
    await post(server, 'live-delta-2', { variables: { a: 1 } })
    const held = await snapshotOf(server, 'live-delta-2')
    const stream = await openEvents(`${server.url}/api/session/live-delta-2/events`, { 'session-base': tagOf(held) })
    await new Promise((resolve) => setTimeout(resolve, 100))
    const input = { sleepMs: 600, padding: 'p'.repeat(3000) }
    await fetch(`${server.url}/api/session/live-delta-2/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ runId: 'live-run-delta', step: 'conformance_echo', input }),
    })
    await vi.waitFor(() => expect(stream.events.some((event) => event.data.status === 'succeeded')).toBe(true), {
      timeout: 5000,
      interval: 10,
    })
    await stream.close()
    const runs = stream.events.filter((event) => event.event === 'run')
    expect(runs[0]!.data).toMatchObject({ runId: 'live-run-delta', input, rev: 1 })
    expect(runs.length).toBeGreaterThan(2)
    let record = runs[0]!.data as unknown as RunRecord
    for (const later of runs.slice(1)) {
      expect(later.data).toMatchObject({ base: record.rev })
      expect(later.data).not.toHaveProperty('input')
      // Progress is the change (the end carries the output, which is new).
      if (later.data.status === 'running') expect(later.bytes).toBeLessThan(200)
      record = applyRunDelta(record, later.data as unknown as RunDelta)!
    }
    const stored = (await (await fetch(`${server.url}/api/session/live-delta-2/runs/live-run-delta`)).json()) as { run: RunRecord }
    expect(record).toEqual(stored.run)
  })

  it('never merges a delta for another version than the one held: the client starts the stream again and ends right', async () => {
    const server = await start(memoryStore())
    await post(server, 'live-delta-3', { variables: { a: 1, b: 1 } })
    let tampered = 0
    // A proxy that breaks the first delta event: it claims a base the client does not hold, with a change that is not the server's.
    const tamper: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      if (!String(input).endsWith('/events') || tampered > 0) return response
      const reader = response.body!.getReader()
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          const { done, value } = await reader.read()
          if (done) {
            controller.close()
            return
          }
          const text = new TextDecoder().decode(value)
          if (tampered === 0 && text.includes('event: delta')) {
            tampered++
            const broken = text.replace(/"base":(\d+)/, (_, base: string) => `"base":${Number(base) - 1}`).replace('"b":2', '"b":"WRONG"')
            controller.enqueue(new TextEncoder().encode(broken))
          } else controller.enqueue(value)
        },
        cancel: () => reader.cancel(),
      })
      return new Response(body, { status: response.status, headers: response.headers })
    }
    const watcher = client(server, 'live-delta-3', { plugins: [liveUpdates()], fetch: tamper })
    await watcher.start()
    await watcher.refresh()
    await new Promise((resolve) => setTimeout(resolve, 100))
    const seen: unknown[] = []
    watcher.subscribe('b', () => seen.push(watcher.get('b')))
    await post(server, 'live-delta-3', { variables: { b: 2 } })
    await vi.waitFor(() => expect(watcher.get('b')).toBe(2), { timeout: 5000, interval: 10 })
    expect(tampered).toBe(1)
    expect(seen.every((value) => value === 2)).toBe(true)
    expect(watcher.getSnapshot()).toEqual({ a: 1, b: 2 })
  })
})
