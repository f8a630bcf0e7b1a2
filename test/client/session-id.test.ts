import { afterEach, describe, expect, it } from 'vitest'
import {
  createSessionClient,
  memoryLocalCopy,
  type SessionClient,
  type SessionClientOptions,
  type SessionIdStorage,
} from '../../src/client/index.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

const mock = setupMockServer()
const clients: SessionClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

function makeClient(options: SessionClientOptions) {
  const client = createSessionClient({ endpoint: ENDPOINT, storage: memoryLocalCopy(), locks: null, ...options })
  clients.push(client)
  return client
}

/** What a script keeps between runs: here a Map, in a real one a file. */
function mapStorage(): SessionIdStorage & { entries: Map<string, string> } {
  const entries = new Map<string, string>()
  return {
    entries,
    getItem: (key) => entries.get(key) ?? null,
    setItem: (key, value) => void entries.set(key, value),
    removeItem: (key) => void entries.delete(key),
  }
}

const gets = () => mock.requests.filter((request) => request.method === 'GET')

describe('where the session id is remembered', () => {
  it('in Node, where there is no localStorage, says that nothing remembers the id: each client starts a new session', () => {
    expect((globalThis as { localStorage?: unknown }).localStorage).toBeUndefined()
    const first = makeClient({})
    const second = makeClient({})
    expect(first.sessionIdRemembered).toBe(false)
    expect(second.sessionId).not.toBe(first.sessionId)
    expect(makeClient({ sessionIdStorage: null }).sessionIdRemembered).toBe(false)
    expect(makeClient({ sessionId: 'chosen-by-the-app' }).sessionIdRemembered).toBe(false)
  })

  it('with a sessionIdStorage, a restarted client continues the same session', async () => {
    const ids = mapStorage()
    const first = makeClient({ sessionIdStorage: ids })
    expect(first.sessionIdRemembered).toBe(true)
    first.set('step', 'address')
    await first.flush()
    await first.stop()
    const again = makeClient({ sessionIdStorage: ids })
    expect(again.sessionId).toBe(first.sessionId)
    await again.refresh()
    expect(again.get('step')).toBe('address')
  })

  it('fetches no session it has just made (no 404 to log), and fetches it once a write created it', async () => {
    const ids = mapStorage()
    const client = makeClient({ sessionIdStorage: ids })
    expect(await client.refresh()).toBeNull()
    expect(gets()).toEqual([])
    // Restarted before anything was confirmed: still nothing to fetch.
    await client.stop()
    const restarted = makeClient({ sessionIdStorage: ids })
    expect(restarted.sessionId).toBe(client.sessionId)
    await restarted.refresh()
    expect(gets()).toEqual([])
    restarted.set('email', 'a@b.c')
    await restarted.flush()
    expect(await restarted.refresh()).toMatchObject({ version: 1 })
    expect(gets()).toHaveLength(1)
    await restarted.stop()
    const later = makeClient({ sessionIdStorage: ids })
    await later.refresh()
    expect(later.get('email')).toBe('a@b.c')
    expect(gets()).toHaveLength(2)
  })

  it('fetches an id the app chose, since it may name an existing session', async () => {
    await mock.store.apply('known-session-1', { variables: { a: 1 } })
    const client = makeClient({ sessionId: 'known-session-1' })
    await client.refresh()
    expect(client.get('a')).toBe(1)
    expect(gets()).toHaveLength(1)
  })
})
