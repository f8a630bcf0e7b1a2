import { afterEach, describe, expect, it, vi } from 'vitest'
import { createSessionClient, liveUpdates, memoryLocalCopy, type SessionClient, type SessionClientOptions } from '../../src/client/index.js'
import { createSessionHandler, memoryStore, type RunningServer, serve, type SessionStore } from '../../src/server/index.js'

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
