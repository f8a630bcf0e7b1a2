import { http, HttpResponse } from 'msw'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import {
  createSessionClient,
  memoryLocalCopy,
  type SessionClient,
  type SessionClientOptions,
  SessionError,
  type SessionPatch,
} from '../../src/client/index.js'
import { newGate } from '../gate.js'
import { ENDPOINT, holdNextPost, setupMockServer } from '../msw-server.js'

const mock = setupMockServer({
  echo: ({ variables }) => ({ output: { email: variables.email ?? null } }),
})
const ID = 'sync-session-1'
const clients: SessionClient[] = []

function makeClient(options: SessionClientOptions = {}) {
  const client = createSessionClient({
    endpoint: ENDPOINT,
    sessionId: ID,
    storage: memoryLocalCopy(),
    retry: { baseMs: 100, maxMs: 1000 },
    ...options,
  })
  clients.push(client)
  return client
}

/** Resolves when the client has nothing left unconfirmed and no request in flight. */
async function settled(client: SessionClient) {
  await vi.waitFor(() => expect(client.getStatus()).toMatchObject({ isDirty: false, isSyncing: false }))
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

describe('local writes', () => {
  it('shows a write at once, before any request is made', async () => {
    const client = makeClient()
    client.set('email', 'a@b.c')
    expect(client.get('email')).toBe('a@b.c')
    expect(client.getSnapshot()).toEqual({ email: 'a@b.c' })
    expect(client.getStatus()).toMatchObject({ isDirty: true, pendingKeys: ['email'] })
    expect(mock.requests).toHaveLength(0)
  })

  it('notifies only the subscribers of the key that changed', () => {
    const client = makeClient()
    const onA = vi.fn()
    const onB = vi.fn()
    const onAny = vi.fn()
    client.subscribe('a', onA)
    client.subscribe('b', onB)
    client.subscribe(onAny)
    client.set('a', 1)
    client.set('a', 2)
    client.set('a', 2) // same value: no notification
    expect(onA).toHaveBeenCalledTimes(2)
    expect(onB).not.toHaveBeenCalled()
    expect(onAny).toHaveBeenCalledTimes(2)
  })

  it('keeps the snapshot identity until a variable changes', () => {
    const client = makeClient()
    client.set('a', { deep: [1] })
    const first = client.getSnapshot()
    expect(client.getSnapshot()).toBe(first)
    client.set('a', { deep: [1] })
    expect(client.getSnapshot()).toBe(first)
    client.set('b', 1)
    expect(client.getSnapshot()).not.toBe(first)
  })

  it('stores a frozen copy: mutating what was passed in changes nothing', () => {
    const client = makeClient()
    const cart = ['milk']
    client.set('cart', cart)
    cart.push('eggs')
    expect(client.get('cart')).toEqual(['milk'])
    expect(() => (client.get('cart') as string[]).push('x')).toThrow(TypeError)
  })

  it.each([
    ['a function', () => 1, /function is not JSON/],
    ['undefined', undefined, /undefined is not JSON.*deleteVariable/],
    ['a symbol', Symbol('s'), /symbol/],
    ['NaN', NaN, /NaN is not a JSON number/],
    ['Infinity', Infinity, /Infinity is not a JSON number/],
    ['a BigInt', 10n, /BigInt.*toString/],
    /* eslint-disable @typescript-eslint/no-unsafe-class-instance-assignment, @typescript-eslint/no-extraneous-class -- values that are not JSON, on purpose */
    ['a Map', new Map(), /Map is not JSON.*Object.fromEntries/],
    ['a Set', new Set([1]), /Set is not JSON/],
    ['a Date', new Date(), /Date is not JSON.*toISOString/],
    ['a class instance', new (class Point {})(), /Point instance/],
    /* eslint-enable @typescript-eslint/no-unsafe-class-instance-assignment, @typescript-eslint/no-extraneous-class */
    ['a nested Date', { when: [new Date()] }, /at \.when\[0\]/],
    [
      'a cycle',
      (() => {
        const o: Record<string, unknown> = {}
        o.self = o
        return o
      })(),
      /cycle/,
    ],
  ])('throws a TypeError naming the key for %s, and changes nothing', (_, value, message) => {
    const client = makeClient()
    client.set('kept', 1)
    const before = client.getSnapshot()
    const listener = vi.fn()
    client.subscribe(listener)
    let thrown: unknown
    try {
      client.set('field', value)
    } catch (error) {
      thrown = error
    }
    expect(thrown).toBeInstanceOf(TypeError)
    expect((thrown as Error).message).toContain('setVariable("field")')
    expect((thrown as Error).message).toMatch(message)
    expect(client.getSnapshot()).toBe(before)
    expect(client.getStatus().pendingKeys).toEqual(['kept'])
    expect(listener).not.toHaveBeenCalled()
  })

  it('refuses forbidden and malformed names', () => {
    const client = makeClient()
    for (const key of ['__proto__', 'constructor', 'prototype', '', 'k'.repeat(257)]) {
      expect(() => client.set(key, 1)).toThrow(TypeError)
      expect(() => client.delete(key)).toThrow(TypeError)
    }
    expect(client.getSnapshot()).toEqual({})
  })
})

describe('sending patches', () => {
  it('sends one POST with only the changed keys, a client id and a sequence number', async () => {
    const client = makeClient()
    await client.start()
    client.set('untouched', 'x')
    await client.flush()
    mock.requests = []
    for (let i = 1; i <= 30; i++) client.set('email', 'a@b.c'.slice(0, (i % 5) + 1))
    client.set('name', 'Ada')
    client.delete('untouched')
    await client.flush()
    const posts = mock.posts()
    expect(posts).toHaveLength(1)
    expect(posts[0]!.body).toEqual({
      variables: { email: client.get('email'), name: 'Ada' },
      deleted: ['untouched'],
      clientId: expect.stringMatching(/^c-/),
      seq: 2,
    })
    expect(await mock.store.get(ID)).toMatchObject({ variables: { email: client.get('email'), name: 'Ada' }, version: 2 })
  })

  it('makes no request when nothing changed', async () => {
    const client = makeClient()
    await client.start()
    client.sync()
    await client.flush()
    expect(mock.requests).toHaveLength(0)
    client.set('a', 1)
    client.delete('a') // back to what the server has: nothing to send
    client.set('b', 'same')
    await client.flush()
    mock.requests = []
    client.set('b', 'other')
    client.set('b', 'same')
    expect(client.getStatus().isDirty).toBe(false)
    client.sync()
    await client.flush()
    expect(mock.requests).toHaveLength(0)
  })

  it('keeps at most one request in flight; changes made meanwhile go in the next patch', async () => {
    const { gate, release } = newGate()
    let inFlight = 0
    let maxInFlight = 0
    mock.server.use(
      http.post(`${ENDPOINT}/${ID}`, async () => {
        inFlight++
        maxInFlight = Math.max(maxInFlight, inFlight)
        await gate
        inFlight--
        return undefined // fall through to the real handler
      }),
    )
    const client = makeClient()
    await client.start()
    client.set('a', 1)
    client.sync()
    await vi.waitFor(() => expect(mock.posts()).toHaveLength(1))
    client.set('b', 2)
    client.sync()
    client.set('c', 3)
    client.sync()
    expect(mock.posts()).toHaveLength(1)
    release()
    await settled(client)
    expect(maxInFlight).toBe(1)
    expect(mock.posts().map((r) => r.body)).toEqual([
      expect.objectContaining({ variables: { a: 1 }, seq: 1 }),
      expect.objectContaining({ variables: { b: 2, c: 3 }, seq: 2 }),
    ])
  })

  it('does not roll back newer local edits when an older reply arrives', async () => {
    const { gate, release } = newGate()
    mock.server.use(holdNextPost(`${ENDPOINT}/${ID}`, gate))
    const client = makeClient()
    await client.start()
    client.set('email', 'old@b.c')
    client.sync()
    await vi.waitFor(() => expect(mock.posts()).toHaveLength(1))
    client.set('email', 'new@b.c')
    const seen: unknown[] = []
    client.subscribe('email', () => seen.push(client.get('email')))
    release()
    await vi.waitFor(() => expect(client.getStatus().isSyncing).toBe(false))
    expect(client.get('email')).toBe('new@b.c')
    expect(seen).toEqual([]) // never flickered back to the acknowledged old value
    await client.flush()
    expect((await mock.store.get(ID))?.variables.email).toBe('new@b.c')
  })
})

describe('flush', () => {
  it('resolves without a request when nothing is pending', async () => {
    const client = makeClient()
    await client.flush()
    expect(mock.requests).toHaveLength(0)
  })

  it('resolves only after the server acknowledged every earlier change', async () => {
    const { gate, release } = newGate()
    mock.server.use(holdNextPost(`${ENDPOINT}/${ID}`, gate))
    const client = makeClient()
    client.set('a', 1)
    let done = false
    const flushed = client.flush().then(() => (done = true))
    await vi.waitFor(() => expect(mock.posts()).toHaveLength(1))
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(done).toBe(false)
    release()
    await flushed
    expect((await mock.store.get(ID))?.variables).toEqual({ a: 1 })
  })

  it('rejects with a typed error on a 4xx; the change stays visible and later changes still sync', async () => {
    mock.server.use(
      http.post(`${ENDPOINT}/${ID}`, () => HttpResponse.json({ error: { code: 'too_large', message: 'too big' } }, { status: 413 }), {
        once: true,
      }),
    )
    const client = makeClient()
    client.set('big', 'x')
    const failure = await client.flush().catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(SessionError)
    expect(failure).toMatchObject({ code: 'too_large', status: 413, retryable: false })
    expect(client.get('big')).toBe('x')
    expect(client.getStatus().error?.code).toBe('too_large')

    client.set('small', 1)
    await client.flush()
    expect((await mock.store.get(ID))?.variables).toEqual({ small: 1 })
    expect(client.getStatus().error).toBeNull()
  })

  it('rejects when offline and sends once back online', async () => {
    const client = makeClient()
    await client.start()
    client.setOnline(false)
    client.set('a', 1)
    client.sync()
    await expect(client.flush()).rejects.toMatchObject({ code: 'offline' })
    expect(mock.requests).toHaveLength(0)
    client.setOnline(true)
    await settled(client)
    expect((await mock.store.get(ID))?.variables).toEqual({ a: 1 })
  })
})

describe('retries', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  })
  afterEach(() => {
    vi.useRealTimers()
    vi.restoreAllMocks()
  })

  it('retries a 5xx with the same seq and applies the change once', async () => {
    mock.server.use(
      http.post(`${ENDPOINT}/${ID}`, () => HttpResponse.json({ error: { code: 'internal_error', message: 'down' } }, { status: 503 }), {
        once: true,
      }),
    )
    const client = makeClient()
    client.set('a', 1)
    const flushed = client.flush()
    await vi.advanceTimersByTimeAsync(5)
    expect(client.getStatus().error?.code).toBe('internal_error')
    await vi.advanceTimersByTimeAsync(1000)
    await flushed
    const posts = mock.posts()
    expect(posts).toHaveLength(2)
    expect(posts[1]!.body).toEqual(posts[0]!.body)
    expect(await mock.store.get(ID)).toMatchObject({ variables: { a: 1 }, version: 1 })
    expect(client.getStatus().error).toBeNull()
  })

  it('does not apply twice when the reply is lost after the server applied the write', async () => {
    let lost = 0
    mock.server.use(
      http.post(
        `${ENDPOINT}/${ID}`,
        async ({ request }) => {
          // The real handler applies the patch, then the network drops the answer.
          await mock.store.apply(ID, (await request.json()) as SessionPatch)
          lost++
          return HttpResponse.error()
        },
        { once: true },
      ),
    )
    const client = makeClient()
    client.set('count', 1)
    const flushed = client.flush()
    await vi.advanceTimersByTimeAsync(1000)
    await flushed
    expect(lost).toBe(1)
    expect(mock.posts()).toHaveLength(2)
    expect(await mock.store.get(ID)).toMatchObject({ variables: { count: 1 }, version: 1 })
  })

  it('backs off exponentially between retries, up to the cap', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(1) // jitter factor 0.5 + 1/2 = 1: exact delays
    const sentAt: number[] = []
    mock.server.use(
      http.post(`${ENDPOINT}/${ID}`, () => {
        sentAt.push(Date.now())
        return HttpResponse.error()
      }),
    )
    const client = makeClient({ retry: { baseMs: 100, maxMs: 800 } })
    client.set('a', 1)
    client.sync()
    for (let elapsed = 0; elapsed < 2400; elapsed += 10) await vi.advanceTimersByTimeAsync(10)
    const gaps = sentAt.slice(1).map((at, i) => at - sentAt[i]!)
    expect(gaps.slice(0, 5)).toEqual([100, 200, 400, 800, 800])
    expect(client.getStatus()).toMatchObject({ isDirty: true, error: { code: 'network_error' } })
    expect(client.get('a')).toBe(1)
  })
})

describe('run', () => {
  it('sends the pending patch before the run request, and the step sees the latest value', async () => {
    const client = makeClient()
    client.set('email', 'a@b.c')
    const output = await client.run('echo')
    expect(output).toEqual({ email: 'a@b.c' })
    expect(mock.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`POST /api/session/${ID}`, `POST /api/session/${ID}/runs`])
  })

  it('does not call the step when the flush fails', async () => {
    mock.server.use(
      http.post(`${ENDPOINT}/${ID}`, () => HttpResponse.json({ error: { code: 'invalid_patch', message: 'no' } }, { status: 400 }), {
        once: true,
      }),
    )
    const client = makeClient()
    client.set('email', 'a@b.c')
    await expect(client.run('echo')).rejects.toMatchObject({ code: 'invalid_patch' })
    expect(mock.requests.some((r) => r.path.endsWith('/run/echo'))).toBe(false)
  })

  it('rejects an unknown step with unknown_step', async () => {
    const client = makeClient()
    await expect(client.run('missing')).rejects.toMatchObject({ code: 'unknown_step', status: 404 })
  })
})
