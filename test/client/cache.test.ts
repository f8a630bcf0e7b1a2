import 'fake-indexeddb/auto'
import { http, HttpResponse } from 'msw'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { readBase, toBaseRecord } from '../../src/client/cache.js'
import {
  createSessionClient,
  indexedDbLocalCopy,
  type LocalCopyStorage,
  type SessionClient,
  type SessionPatch,
} from '../../src/client/index.js'
import type { PageLocks } from '../../src/client/tabs.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

const mock = setupMockServer()
const clients: SessionClient[] = []
let n = 0

function newIds() {
  n++
  return { sessionId: `cache-session-${n}`, storage: indexedDbLocalCopy(`cache-test-${n}`) }
}

function makeClient(ids: { sessionId: string; storage: LocalCopyStorage }) {
  const client = createSessionClient({ endpoint: ENDPOINT, ...ids, retry: { baseMs: 50, maxMs: 200 } })
  clients.push(client)
  return client
}

/** Counts writes to a storage. */
function counting(storage: LocalCopyStorage) {
  const writes: unknown[] = []
  return { writes, storage: { ...storage, set: (key: string, value: unknown) => (writes.push(value), storage.set(key, value)) } }
}

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

describe('IndexedDB cache', () => {
  it('coalesces a burst of writes into one IndexedDB write within tens of milliseconds', async () => {
    const ids = newIds()
    const { writes, storage } = counting(ids.storage)
    const client = makeClient({ ...ids, storage })
    await client.start()
    for (let i = 0; i < 50; i++) client.set('field', `value ${i}`)
    await vi.waitFor(() => expect(writes).toHaveLength(1), { timeout: 200, interval: 5 })
    await new Promise((resolve) => setTimeout(resolve, 60))
    expect(writes).toHaveLength(1)
    expect(await ids.storage.get(`${ENDPOINT}|${ids.sessionId}#${client.clientId}`)).toMatchObject({
      pending: { variables: { field: 'value 49' } },
    })
  })

  it('shows the cached values at start, before the server answers', async () => {
    const ids = newIds()
    const first = makeClient(ids)
    first.set('email', 'a@b.c')
    await first.flush()
    await first.stop()

    // The server now never answers: what the second page shows comes from IndexedDB alone.
    mock.server.use(http.all(`${ENDPOINT}/*`, () => new Promise<never>(() => {})))
    const second = makeClient(ids)
    await second.start()
    expect(second.get('email')).toBe('a@b.c')
    expect(second.getStatus()).toMatchObject({ isHydrated: true, isDirty: false, version: 1 })
  })

  it('resends a left-over patch with its original clientId and seq, and the server applies it once', async () => {
    const ids = newIds()
    // The first page's request reaches the server, which applies it; the page dies before the reply.
    mock.server.use(
      http.post(
        `${ENDPOINT}/${ids.sessionId}`,
        async ({ request }) => {
          await mock.store.apply(ids.sessionId, (await request.json()) as SessionPatch)
          return new Promise<never>(() => {})
        },
        { once: true },
      ),
    )
    const first = makeClient(ids)
    first.set('count', 1)
    first.sync()
    await vi.waitFor(async () => expect(await mock.store.get(ids.sessionId)).not.toBeNull())
    await first.stop()
    const firstPatch = mock.posts()[0]!.body as { clientId: string; seq: number }

    const second = makeClient(ids)
    second.set('other', true) // a change of the new page, made before its cache was read
    await second.start()
    await vi.waitFor(() => expect(second.getStatus()).toMatchObject({ isDirty: false, isSyncing: false }))
    const resent = mock.posts()[1]!.body as { clientId: string; seq: number }
    expect(resent).toMatchObject({ clientId: firstPatch.clientId, seq: firstPatch.seq, variables: { count: 1 } })
    expect(await mock.store.get(ids.sessionId)).toMatchObject({ variables: { count: 1, other: true }, version: 2 })
  })

  it('sends changes that were pending at close when the next page starts', async () => {
    const ids = newIds()
    const first = makeClient(ids)
    await first.start()
    first.set('draft', 'unsent')
    await first.stop() // closed before the debounce: nothing sent, but written to IndexedDB
    expect(mock.posts()).toHaveLength(0)

    const second = makeClient(ids)
    await second.start()
    expect(second.get('draft')).toBe('unsent')
    await vi.waitFor(async () => expect((await mock.store.get(ids.sessionId))?.variables).toEqual({ draft: 'unsent' }))
  })

  it('discards a cache record it cannot read and starts from the server', async () => {
    const ids = newIds()
    await ids.storage.set(`${ENDPOINT}|${ids.sessionId}#c-old-page`, { format: 1, junk: true })
    await mock.store.apply(ids.sessionId, { variables: { fromServer: 1 } })
    const client = makeClient(ids)
    await client.start()
    expect(client.getSnapshot()).toEqual({})
    expect(await ids.storage.get(`${ENDPOINT}|${ids.sessionId}#c-old-page`)).toBeUndefined()
    await client.refresh()
    expect(client.getSnapshot()).toEqual({ fromServer: 1 })
  })

  it('keeps working in memory when IndexedDB fails, and says so', async () => {
    const failing: LocalCopyStorage = {
      get: () => Promise.reject(new DOMException('blocked', 'InvalidStateError')),
      set: () => Promise.reject(new DOMException('quota', 'QuotaExceededError')),
      del: () => Promise.reject(new DOMException('blocked', 'InvalidStateError')),
      keys: () => Promise.reject(new DOMException('blocked', 'InvalidStateError')),
    }
    const client = makeClient({ sessionId: 'cache-failing-1', storage: failing })
    await client.start()
    client.set('a', 1)
    await client.flush()
    expect(client.getStatus().isPersistent).toBe(false)
    expect(client.get('a')).toBe(1)
    expect((await mock.store.get('cache-failing-1'))?.variables).toEqual({ a: 1 })
  })

  it('reports a failing write as not persistent, and recovers when writes work again', async () => {
    let fail = true
    const memory = new Map<string, unknown>()
    const flaky: LocalCopyStorage = {
      get: async (key) => memory.get(key),
      set: async (key, value) => {
        if (fail) throw new DOMException('quota', 'QuotaExceededError')
        memory.set(key, value)
      },
      del: async (key) => void memory.delete(key),
      keys: async () => [...memory.keys()],
    }
    const client = makeClient({ sessionId: 'cache-flaky-1', storage: flaky })
    await client.start()
    client.set('a', 1)
    await client.persist()
    expect(client.getStatus().isPersistent).toBe(false)
    fail = false
    client.set('a', 2)
    await client.persist()
    expect(client.getStatus().isPersistent).toBe(true)
    expect(memory.size).toBe(1)
  })

  it('writes the outbox to IndexedDB before the request leaves', async () => {
    const ids = newIds()
    const client = makeClient(ids)
    let cachedAtRequest: unknown
    mock.server.use(
      http.post(
        `${ENDPOINT}/${ids.sessionId}`,
        async () => {
          cachedAtRequest = await ids.storage.get(`${ENDPOINT}|${ids.sessionId}#${client.clientId}`)
          return HttpResponse.json({ error: { code: 'internal_error', message: 'x' } }, { status: 500 })
        },
        { once: true },
      ),
    )
    await client.start()
    client.set('a', 1)
    client.sync()
    await vi.waitFor(() => expect(cachedAtRequest).toBeDefined())
    expect(cachedAtRequest).toMatchObject({ queue: [{ seq: 1, variables: { a: 1 } }], pending: { variables: {} } })
  })

  it("reopens IndexedDB once when the connection was closed under it (Safari's 'connection is closing')", async () => {
    const ids = newIds()
    await ids.storage.set('warm-up', 1) // the connection is open and cached
    // eslint-disable-next-line @typescript-eslint/unbound-method -- put back below, and applied with the database as `this`
    const original = IDBDatabase.prototype.transaction
    let failures = 0
    IDBDatabase.prototype.transaction = function (this: IDBDatabase, ...args: Parameters<IDBDatabase['transaction']>) {
      if (failures++ === 0) throw new DOMException('The database connection is closing.', 'InvalidStateError')
      return original.apply(this, args)
    } as IDBDatabase['transaction']
    try {
      await ids.storage.set('after-close', 'kept')
    } finally {
      IDBDatabase.prototype.transaction = original
    }
    expect(failures).toBe(2)
    expect(await ids.storage.get('after-close')).toBe('kept')
  })
})

describe('the local copy: one base per session, one outbox per page', () => {
  /** Counts what a client reads of a storage. */
  function reading(storage: LocalCopyStorage) {
    const gets: string[] = []
    return {
      gets,
      storage: {
        ...storage,
        get: (key: string) => (gets.push(key), storage.get(key)),
        getWithKeys: (key: string) => (gets.push(key), storage.getWithKeys!(key)),
      },
    }
  }

  it('a reload with nothing pending reads one record (the base) and asks no page whether it is alive', async () => {
    const ids = newIds()
    const first = makeClient(ids)
    first.set('email', 'a@b.c')
    await first.flush()
    await first.stop()
    // Confirmed: the page's outbox is gone, the base holds the value.
    expect(await ids.storage.keys()).toEqual([`${ENDPOINT}|${ids.sessionId}`])

    const { gets, storage } = reading(ids.storage)
    let queries = 0
    const locks = { request: () => Promise.resolve(), query: async () => (queries++, { held: [], pending: [] }) } as unknown as PageLocks
    const second = createSessionClient({ endpoint: ENDPOINT, sessionId: ids.sessionId, storage, locks })
    clients.push(second)
    await second.start()
    expect(second.get('email')).toBe('a@b.c')
    expect(gets).toEqual([`${ENDPOINT}|${ids.sessionId}`])
    expect(queries).toBe(0)
  })

  it('reads the record an earlier version left (format 2: base and changes in one record per page) and sends its changes once', async () => {
    const ids = newIds()
    await mock.store.apply(ids.sessionId, { variables: { a: 1 } })
    const base = (await mock.store.get(ids.sessionId))!
    await ids.storage.set(`${ENDPOINT}|${ids.sessionId}#c-old-page`, {
      format: 2,
      clientId: 'c-old-page',
      savedAt: Date.now(),
      base,
      queue: [],
      pending: { variables: { b: 2 }, deleted: [] },
      nextSeq: 4,
    })
    const client = makeClient(ids)
    await client.start()
    expect(client.getSnapshot()).toEqual({ a: 1, b: 2 })
    await client.flush()
    expect(mock.posts().map((post) => post.body)).toEqual([
      expect.objectContaining({ clientId: 'c-old-page', seq: 4, variables: { b: 2 } }),
    ])
    await vi.waitFor(async () => expect(await ids.storage.get(`${ENDPOINT}|${ids.sessionId}#c-old-page`)).toBeUndefined())
  })

  it('never replaces a newer base another tab wrote with an older one', async () => {
    const ids = newIds()
    const client = makeClient(ids)
    client.set('a', 1)
    await client.flush() // version 1 here
    const newer = { sessionId: ids.sessionId, variables: { a: 1, b: 'from another tab' }, version: 9, createdAt: '', updatedAt: '' }
    await ids.storage.set(`${ENDPOINT}|${ids.sessionId}`, toBaseRecord(newer))
    client.set('a', 2)
    await client.flush() // version 2 here: older than what the other tab stored
    await client.persist()
    expect(readBase(await ids.storage.get(`${ENDPOINT}|${ids.sessionId}`))).toEqual(newer)
  })
})
