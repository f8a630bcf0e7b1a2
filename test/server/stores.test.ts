import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import { fileStore, memoryStore, openStore, postgresStore, sqliteStore, type SessionStore, type StoreOptions } from '../../src/server/index.js'
import { DATABASE_URL, dropTestTables, freshTable } from '../postgres.js'

interface StoreKind {
  name: string
  /** Opens the store; called again with the same place to simulate a restart. */
  open: (place: string, options?: StoreOptions) => Promise<SessionStore>
  durable: boolean
}

const kinds: StoreKind[] = [
  { name: 'memory', open: async (_, options) => memoryStore(options), durable: false },
  { name: 'file', open: async (place, options) => fileStore(join(place, 'sessions'), options), durable: true },
  { name: 'sqlite', open: (place, options) => sqliteStore(join(place, 'sessions.db'), options), durable: true },
  // The "place" of a PostgreSQL store is a table of its own in the test database.
  { name: 'postgres', open: (place, options) => postgresStore(DATABASE_URL, { ...options, table: tableFor(place) }), durable: true },
]

const tables = new Map<string, string>()
const tableFor = (place: string) => tables.get(place) ?? (tables.set(place, freshTable()), tables.get(place)!)

const opened: SessionStore[] = []
const places: string[] = []
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()))
  await Promise.all(places.splice(0).map((place) => rm(place, { recursive: true, force: true })))
})

afterAll(dropTestTables)

async function newPlace() {
  const place = await mkdtemp(join(tmpdir(), 'ws-store-'))
  places.push(place)
  return place
}

async function openKind(kind: StoreKind, options?: StoreOptions, place?: string) {
  const where = place ?? (await newPlace())
  const store = await kind.open(where, options)
  opened.push(store)
  return { store, place: where }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(kinds)('$name store', (kind) => {
  const open = (options?: StoreOptions, place?: string) => openKind(kind, options, place)

  it('reads a missing session as null and creates one with the first patch', async () => {
    const { store } = await open()
    expect(await store.get('missing-1')).toBeNull()
    const { snapshot, applied } = await store.apply('session-1', { variables: { a: 1 } })
    expect(applied).toBe(true)
    expect(snapshot).toMatchObject({ sessionId: 'session-1', variables: { a: 1 }, version: 1 })
    expect(await store.get('session-1')).toEqual(snapshot)
  })

  it('hands out copies: changing a returned snapshot changes nothing stored', async () => {
    const { store } = await open()
    const { snapshot } = await store.apply('session-1', { variables: { list: [1] } })
    ;(snapshot.variables.list as number[]).push(2)
    const read = await store.get('session-1')
    ;(read!.variables.list as number[]).push(3)
    expect((await store.get('session-1'))!.variables.list).toEqual([1])
  })

  it('applies 200 concurrent patches of distinct keys to a new session: all present, version exactly 200', async () => {
    const { store } = await open()
    await Promise.all(Array.from({ length: 200 }, (_, i) => store.apply('burst-1', { variables: { [`k${i}`]: i }, clientId: `c${i}`, seq: 1 })))
    const snapshot = await store.get('burst-1')
    expect(snapshot!.version).toBe(200)
    expect(Object.keys(snapshot!.variables)).toHaveLength(200)
    for (let i = 0; i < 200; i++) expect(snapshot!.variables[`k${i}`]).toBe(i)
  })

  it('applies a replayed seq once, and an older seq not at all', async () => {
    const { store } = await open()
    await store.apply('seq-1', { variables: { n: 1 }, clientId: 'tab', seq: 1 })
    await store.apply('seq-1', { variables: { n: 2 }, clientId: 'tab', seq: 2 })
    const replay = await store.apply('seq-1', { variables: { n: 2 }, clientId: 'tab', seq: 2 })
    const older = await store.apply('seq-1', { variables: { n: 1 }, clientId: 'tab', seq: 1 })
    expect(replay.applied).toBe(false)
    expect(older.applied).toBe(false)
    expect(await store.get('seq-1')).toMatchObject({ variables: { n: 2 }, version: 2 })
  })

  it('deletes a session', async () => {
    const { store } = await open()
    await store.apply('gone-1', { variables: { a: 1 } })
    expect(await store.delete('gone-1')).toBe(true)
    expect(await store.delete('gone-1')).toBe(false)
    expect(await store.get('gone-1')).toBeNull()
  })

  it('lists newest first, in pages, and per owner', async () => {
    const { store } = await open()
    for (const [id, userId] of [['s-1', 'ada'], ['s-2', 'eve'], ['s-3', 'ada'], ['s-4', 'ada']] as const) {
      await store.apply(id, { variables: { id }, userId })
      await sleep(3)
    }
    expect((await store.list()).map((s) => s.sessionId)).toEqual(['s-4', 's-3', 's-2', 's-1'])
    expect((await store.list({ userId: 'ada', limit: 2 })).map((s) => s.sessionId)).toEqual(['s-4', 's-3'])
    expect((await store.list({ userId: 'ada', limit: 2, offset: 2 })).map((s) => s.sessionId)).toEqual(['s-1'])
    expect((await store.list())[0]).not.toHaveProperty('variables')
  })

  it("refuses a change to another owner's session as not_found, changing nothing", async () => {
    const { store } = await open()
    await store.apply('owned-1', { variables: { a: 1 }, userId: 'ada' })
    await expect(store.apply('owned-1', { variables: { a: 2 }, userId: 'eve' })).rejects.toMatchObject({ code: 'not_found' })
    expect(await store.get('owned-1')).toMatchObject({ variables: { a: 1 }, version: 1, userId: 'ada' })
  })

  it('refuses a merge that would pass the size limit, changing nothing', async () => {
    const { store } = await open()
    await store.apply('big-1', { variables: { a: 'x'.repeat(600) } }, { maxBytes: 1000 })
    await expect(store.apply('big-1', { variables: { b: 'y'.repeat(600) } }, { maxBytes: 1000 })).rejects.toMatchObject({ code: 'too_large' })
    expect(await store.get('big-1')).toMatchObject({ version: 1 })
    expect((await store.get('big-1'))!.variables).not.toHaveProperty('b')
  })

  it('expires sessions after ttlMs: not found, not listed, purged, and a new patch starts afresh', async () => {
    const { store } = await open({ ttlMs: 150 })
    await store.apply('old-1', { variables: { a: 1 } })
    await store.apply('old-2', { variables: { a: 1 } })
    expect(await store.get('old-1')).not.toBeNull()
    await sleep(200)
    expect(await store.get('old-1')).toBeNull()
    expect(await store.list()).toEqual([])
    // Some stores drop an expired session as they read it, others leave it to the purge.
    expect(await store.purgeExpired()).toBeLessThanOrEqual(2)
    expect(await store.purgeExpired()).toBe(0)
    expect(await store.apply('old-1', { variables: { b: 2 } })).toMatchObject({ snapshot: { variables: { b: 2 }, version: 1 } })
  })

  it('has typed getState / setState helpers', async () => {
    const { store } = await open()
    const snapshot = await store.setState<string[]>('typed-1', 'cart', ['milk'])
    expect(snapshot.version).toBe(1)
    const cart = await store.getState<string[]>('typed-1', 'cart')
    expect(cart).toEqual(['milk'])
    expect(await store.getState('typed-1', 'missing')).toBeUndefined()
    expect(await store.getState('no-session', 'cart')).toBeUndefined()
  })
})

describe.each(kinds.filter((kind) => kind.durable))('$name store across a restart', (kind) => {
  const open = (options?: StoreOptions, place?: string) => openKind(kind, options, place)

  it('keeps everything across a restart, including which seqs were applied', async () => {
    const first = await open()
    await first.store.apply('durable-1', { variables: { a: 1, b: [1, 2] }, clientId: 'tab', seq: 5, userId: 'ada' })
    await first.store.apply('durable-1', { deleted: ['a'], variables: { c: 'x' }, clientId: 'tab', seq: 6, userId: 'ada' })
    await first.store.close()

    const { store } = await open({}, first.place)
    expect(await store.get('durable-1')).toMatchObject({ variables: { b: [1, 2], c: 'x' }, version: 2, userId: 'ada' })
    const replay = await store.apply('durable-1', { variables: { c: 'replayed' }, clientId: 'tab', seq: 6, userId: 'ada' })
    expect(replay.applied).toBe(false)
    expect((await store.list()).map((s) => s.sessionId)).toEqual(['durable-1'])
  })
})

describe('openStore', () => {
  it('opens each store its URL names', async () => {
    const place = await newPlace()
    for (const url of ['memory:', `file:${join(place, 'files')}`, `sqlite:${join(place, 'db.sqlite')}`, 'sqlite::memory:']) {
      const store = await openStore(url)
      opened.push(store)
      await store.apply('opened-1', { variables: { url } })
      expect(await store.getState('opened-1', 'url')).toBe(url)
    }
  })

  it('says clearly what it cannot open', async () => {
    await expect(openStore('redis://localhost')).rejects.toThrow(/Use memory:, file:DIR, sqlite:PATH/)
    await expect(openStore('sessions.db')).rejects.toThrow(/cannot open "sessions.db"/)
    await expect(openStore('file:')).rejects.toThrow(/names no path/)
  })
})
