import { http, HttpResponse } from 'msw'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createSessionClient,
  type LocalCopyStorage,
  memoryLocalCopy,
  type SessionClient,
  type SessionClientOptions,
  type SessionPatch,
  tabSync,
} from '../../src/client/index.js'
import { fakeLocks } from '../fake-locks.js'
import { newGate } from '../gate.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

const mock = setupMockServer()
const clients: SessionClient[] = []
let n = 0
const newId = () => `faults-session-${++n}`

function makeClient(options: SessionClientOptions = {}) {
  const client = createSessionClient({
    endpoint: ENDPOINT,
    storage: memoryLocalCopy(),
    retry: { baseMs: 20, maxMs: 100 },
    locks: null,
    ...options,
  })
  clients.push(client)
  return client
}

afterEach(async () => {
  vi.useRealTimers()
  vi.restoreAllMocks()
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

const failWith = (status: number, code: string, times = 1) => {
  let left = times
  return http.post(/\/api\/session\/[^/]+$/, () =>
    left-- > 0 ? HttpResponse.json({ error: { code, message: code } }, { status }) : undefined,
  )
}

describe('fault injection', () => {
  it('retries a 429 and a 408 like a 5xx, with the same seq', async () => {
    mock.server.use(failWith(429, 'too_many_requests'), failWith(408, 'timeout'))
    const sessionId = newId()
    const client = makeClient({ sessionId })
    client.set('a', 1)
    await client.flush()
    const seqs = mock.posts().map((r) => (r.body as SessionPatch).seq)
    expect(seqs).toEqual([1, 1, 1])
    expect(await mock.store.get(sessionId)).toMatchObject({ variables: { a: 1 }, version: 1 })
  })

  it('times out a request that is not answered, retries it, and the server applies it once', async () => {
    const sessionId = newId()
    let hung = 0
    mock.server.use(
      http.post(`${ENDPOINT}/${sessionId}`, async ({ request }) => {
        if (hung++ > 0) return undefined
        await mock.store.apply(sessionId, (await request.json()) as SessionPatch) // applied…
        return new Promise<never>(() => {}) // …but the answer never comes
      }),
    )
    const client = makeClient({ sessionId, requestTimeoutMs: 100 })
    client.set('count', 1)
    await client.flush()
    expect(mock.posts()).toHaveLength(2)
    expect(await mock.store.get(sessionId)).toMatchObject({ variables: { count: 1 }, version: 1 })
  })

  it('back online, gives up a request left hanging by the outage and resends it at once, with the same seq', async () => {
    for (const when of ['before the outage', 'during the outage'] as const) {
      const sessionId = newId()
      mock.server.use(
        http.post(
          `${ENDPOINT}/${sessionId}`,
          async ({ request }) => {
            await mock.store.apply(sessionId, (await request.json()) as SessionPatch) // applied…
            return new Promise<never>(() => {}) // …but the answer never comes (the connection died)
          },
          { once: true },
        ),
      )
      const client = makeClient({ sessionId }) // the default 15 s request timeout
      await client.start()
      client.set('a', 1)
      let flushed: Promise<void> | undefined
      if (when === 'before the outage') flushed = client.flush({ timeoutMs: 1000 })
      else {
        client.sync()
        client.setOnline(false) // the request leaves once the outbox is on disk: offline by then
      }
      await vi.waitFor(() => expect(mock.posts().filter((r) => r.path.endsWith(sessionId))).toHaveLength(1))
      client.setOnline(false)
      client.setOnline(true)
      await (flushed ?? client.flush({ timeoutMs: 1000 })) // well before the 15 s timeout
      const posted = mock.posts().filter((r) => r.path.endsWith(sessionId))
      expect(posted, when).toHaveLength(2)
      const [first, second] = posted.map((r) => r.body as SessionPatch)
      expect(second, when).toEqual(first)
      expect(second, when).toMatchObject({ clientId: client.clientId, seq: 1 })
      expect(await mock.store.get(sessionId), when).toMatchObject({ variables: { a: 1 }, version: 1 })
      expect(client.getStatus(), when).toMatchObject({ isDirty: false, isSyncing: false, error: null, version: 1 })
    }
  })

  it('ignores the late answer of a request given up when back online', async () => {
    for (const late of ['an ack', 'a failure'] as const) {
      const sessionId = newId()
      const { gate, release } = newGate()
      let calls = 0
      // The first POST ignores its abort signal and answers only when the test says so.
      const fetch: typeof globalThis.fetch = async (input, init) => {
        if (init?.method !== 'POST' || calls++ > 0) return globalThis.fetch(input, init)
        await gate
        if (late === 'a failure') throw new TypeError('Failed to fetch')
        return Response.json({ sessionId, variables: { a: 1 }, version: 1, createdAt: '', updatedAt: '' }) // older than what the page has by then
      }
      const client = makeClient({ sessionId, fetch })
      await client.start()
      client.set('a', 1)
      const flushed = client.flush({ timeoutMs: 1000 })
      await vi.waitFor(() => expect(calls).toBe(1))
      client.setOnline(false)
      client.setOnline(true)
      await flushed
      release()
      await new Promise((resolve) => setTimeout(resolve, 50)) // the late answer is in; a retry would be under way by now
      expect(client.getStatus(), late).toMatchObject({ isDirty: false, isSyncing: false, error: null, version: 1 })
      client.set('b', 2)
      await client.flush({ timeoutMs: 1000 })
      expect(calls, late).toBe(3)
      const posted = mock.posts().filter((r) => r.path.endsWith(sessionId))
      expect(
        posted.map((r) => (r.body as SessionPatch).seq),
        late,
      ).toEqual([1, 2])
      expect(await mock.store.get(sessionId), late).toMatchObject({ variables: { a: 1, b: 2 }, version: 2 })
      expect(client.getStatus(), late).toMatchObject({ isDirty: false, isSyncing: false, error: null, version: 2 })
    }
  })

  it('calls onAuthError on a 401, then retries the same patch with fresh credentials', async () => {
    const sessionId = newId()
    let token = 'expired'
    mock.server.use(
      http.post(`${ENDPOINT}/${sessionId}`, ({ request }) =>
        request.headers.get('authorization') === 'Bearer fresh'
          ? undefined
          : HttpResponse.json({ error: { code: 'unauthenticated', message: 'sign in' } }, { status: 401 }),
      ),
    )
    const onAuthError = vi.fn(async () => {
      token = 'fresh'
      return true
    })
    const client = makeClient({ sessionId, headers: () => ({ authorization: `Bearer ${token}` }), onAuthError })
    client.set('a', 1)
    await client.flush()
    expect(onAuthError).toHaveBeenCalledTimes(1)
    expect(mock.posts().map((r) => (r.body as SessionPatch).seq)).toEqual([1, 1])
    expect((await mock.store.get(sessionId))?.variables).toEqual({ a: 1 })
  })

  it('refuses the patch when onAuthError cannot help, and says why', async () => {
    const sessionId = newId()
    mock.server.use(
      http.post(`${ENDPOINT}/${sessionId}`, () =>
        HttpResponse.json({ error: { code: 'unauthenticated', message: 'sign in' } }, { status: 401 }),
      ),
    )
    const client = makeClient({ sessionId, onAuthError: () => false })
    client.set('a', 1)
    await expect(client.flush()).rejects.toMatchObject({ code: 'unauthenticated', status: 401 })
    expect(client.get('a')).toBe(1)
    expect(client.getStatus().error?.code).toBe('unauthenticated')
  })

  it('does not let a refused change block the ones after it', async () => {
    const sessionId = newId()
    mock.server.use(failWith(400, 'invalid_patch'))
    const client = makeClient({ sessionId })
    client.set('poison', 'x')
    const first = client.flush().catch((error: unknown) => error)
    client.set('fine', 1) // made after that flush: a patch of its own
    client.sync()
    expect(await first).toMatchObject({ code: 'invalid_patch' })
    await vi.waitFor(async () => expect((await mock.store.get(sessionId))?.variables).toEqual({ fine: 1 }))
    expect(mock.posts().map((r) => r.body)).toEqual([
      expect.objectContaining({ variables: { poison: 'x' }, seq: 1 }),
      expect.objectContaining({ variables: { fine: 1 }, seq: 2 }),
    ])
    expect(client.getSnapshot()).toEqual({ poison: 'x', fine: 1 })
    await client.flush() // nothing made since is unconfirmed
  })

  it('keeps sending when the clock jumps back or forward mid-debounce', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
    const sessionId = newId()
    const client = makeClient({ sessionId })
    await client.start()
    client.set('a', 1)
    vi.setSystemTime(Date.now() - 3600_000) // an hour back
    client.sync()
    await vi.advanceTimersByTimeAsync(50)
    client.set('b', 2)
    vi.setSystemTime(Date.now() + 86_400_000) // a day forward
    client.sync()
    await vi.advanceTimersByTimeAsync(50)
    expect((await mock.store.get(sessionId))?.variables).toEqual({ a: 1, b: 2 })
    expect(client.getStatus()).toMatchObject({ isDirty: false })
  })
})

describe('closing a page', () => {
  it('sends what is unconfirmed with keepalive when the page hides', async () => {
    const sessionId = newId()
    const client = makeClient({ sessionId })
    await client.start()
    client.set('draft', 'typed just before closing')
    client.sendOnHide()
    await vi.waitFor(async () => expect((await mock.store.get(sessionId))?.variables).toEqual({ draft: 'typed just before closing' }))
    expect(mock.posts()).toHaveLength(1)
  })

  it('ends with every change whichever of the patch in flight and the keepalive patch arrives last', async () => {
    for (const order of ['keepalive first', 'keepalive last'] as const) {
      const sessionId = newId()
      const { gate: firstHeld, release: releaseFirst } = newGate()
      mock.server.use(
        http.post(
          `${ENDPOINT}/${sessionId}`,
          async () => {
            if (order === 'keepalive first') await firstHeld // the older patch arrives after the keepalive one
            return undefined
          },
          { once: true },
        ),
      )
      const client = makeClient({ sessionId })
      await client.start()
      client.set('a', 1)
      client.sync() // seq 1 in flight
      await vi.waitFor(() => expect(mock.posts().filter((r) => r.path.endsWith(sessionId))).toHaveLength(1))
      client.set('b', 2)
      client.set('a', 3)
      client.sendOnHide() // seq 2 carries a and b
      await vi.waitFor(() => expect(mock.posts().filter((r) => r.path.endsWith(sessionId))).toHaveLength(2))
      releaseFirst()
      await vi.waitFor(() => expect(client.getStatus()).toMatchObject({ isDirty: false, isSyncing: false }))
      expect((await mock.store.get(sessionId))?.variables, order).toEqual({ a: 3, b: 2 })
    }
  })

  it("takes over a closed page's unsent changes, but never a live page's", async () => {
    const sessionId = newId()
    const storage = memoryLocalCopy() // one browser: the pages share IndexedDB
    const locks = fakeLocks()
    const live = makeClient({ sessionId, storage, locks })
    await live.start()
    live.set('live', 'still typing')
    await live.persist()
    const closed = makeClient({ sessionId, storage, locks })
    await closed.start()
    closed.set('closed', 'typed, then the tab was closed')
    await closed.stop() // releases its lock, as a closed tab does

    const next = makeClient({ sessionId, storage, locks })
    await next.start()
    await vi.waitFor(async () => expect((await mock.store.get(sessionId))?.variables).toEqual({ closed: 'typed, then the tab was closed' }))
    const sent = mock.posts().map((r) => r.body as SessionPatch)
    expect(sent).toEqual([expect.objectContaining({ clientId: closed.clientId, seq: 1 })])
    expect(await storage.keys()).not.toContain(`${ENDPOINT}|${sessionId}#${closed.clientId}`)
    expect(await storage.keys()).toContain(`${ENDPOINT}|${sessionId}#${live.clientId}`)
  })
})

describe('tabs', () => {
  it('converge without reloading: different fields and the same field, each change sent once', async () => {
    const sessionId = newId()
    const storage = memoryLocalCopy()
    const locks = fakeLocks()
    const one = makeClient({ sessionId, storage, locks, plugins: [tabSync()] })
    const two = makeClient({ sessionId, storage, locks, plugins: [tabSync()] })
    await Promise.all([one.start(), two.start()])
    one.set('email', 'ada@example.com')
    two.set('name', 'Ada')
    await Promise.all([one.flush(), two.flush()])
    one.set('note', 'from one')
    await one.flush()
    two.set('note', 'from two')
    await two.flush()
    const server = (await mock.store.get(sessionId))!
    expect(server.variables).toEqual({ email: 'ada@example.com', name: 'Ada', note: 'from two' })
    await vi.waitFor(() => {
      expect(one.getSnapshot()).toEqual(server.variables)
      expect(two.getSnapshot()).toEqual(server.variables)
    })
    expect(mock.posts()).toHaveLength(4) // no change went out twice
  })

  it('keeps working without persistence when every storage call fails', async () => {
    const failing: LocalCopyStorage = {
      get: () => Promise.reject(new Error('denied')),
      set: () => Promise.reject(new Error('denied')),
      del: () => Promise.reject(new Error('denied')),
      keys: () => Promise.reject(new Error('denied')),
    }
    const sessionId = newId()
    const client = makeClient({ sessionId, storage: failing })
    await client.start()
    client.set('a', 1)
    client.sendOnHide()
    await client.flush()
    expect(client.getStatus().isPersistent).toBe(false)
    expect((await mock.store.get(sessionId))?.variables).toEqual({ a: 1 })
  })
})
