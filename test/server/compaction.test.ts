import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { postgresStore, type SessionStore, sqliteStore } from '../../src/server/index.js'
import { MAX_TOMBSTONES } from '../../src/server/stores/session-cache.js'
import { DATABASE_URL, dropTestTables, freshTable } from '../postgres.js'

// Deleted variables stay as value-less rows (tombstones) only up to a bound: the write that takes
// a session's count of them past MAX_TOMBSTONES removes them all and sets the head's
// compacted_through to its version. A store whose cached copy is older than that loads the
// session again whole, so it never keeps a variable another process deleted.

let dir = ''
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ws-compaction-'))
})
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true })
  await dropTestTables()
})

/** One database, as several stores (processes) see it, and what its rows are. */
interface Place {
  open(): Promise<SessionStore>
  /** The session's variable rows: with a value, and without (tombstones). */
  rows(sessionId: string): Promise<{ live: number; tombstones: number }>
  /** The head's compaction columns. */
  head(sessionId: string): Promise<{ compacted_through: number; tombstones: number }>
  close(): Promise<void>
}

async function sqlitePlace(): Promise<Place> {
  const path = join(dir, `sessions-${Math.random().toString(36).slice(2)}.db`)
  const stores: SessionStore[] = []
  let db: Database.Database | undefined
  // Opened after the first store made the file and its tables.
  const reader = () => (db ??= new Database(path, { readonly: true }))
  return {
    async open() {
      const store = await sqliteStore(path)
      stores.push(store)
      return store
    },
    async rows(sessionId) {
      return reader()
        .prepare('SELECT count(value) AS live, count(*) - count(value) AS tombstones FROM ws_variables WHERE session_id = ?')
        .get(sessionId) as { live: number; tombstones: number }
    },
    async head(sessionId) {
      return reader().prepare('SELECT compacted_through, tombstones FROM ws_sessions WHERE id = ?').get(sessionId) as {
        compacted_through: number
        tombstones: number
      }
    },
    async close() {
      db?.close()
      await Promise.all(stores.map((store) => store.close()))
    },
  }
}

async function postgresPlace(): Promise<Place> {
  const table = freshTable()
  const stores: SessionStore[] = []
  const admin = new pg.Client({ connectionString: DATABASE_URL })
  await admin.connect()
  return {
    async open() {
      const store = await postgresStore(DATABASE_URL, { table })
      stores.push(store)
      return store
    },
    async rows(sessionId) {
      const { rows } = await admin.query<{ live: number; tombstones: number }>(
        `SELECT count(value)::int AS live, (count(*) - count(value))::int AS tombstones FROM ${table}_variables WHERE session_id = $1`,
        [sessionId],
      )
      return rows[0]!
    },
    async head(sessionId) {
      const { rows } = await admin.query<{ compacted_through: number; tombstones: number }>(
        `SELECT compacted_through::int, tombstones::int FROM ${table} WHERE id = $1`,
        [sessionId],
      )
      return rows[0]!
    },
    async close() {
      await admin.end()
      await Promise.all(stores.map((store) => store.close()))
    },
  }
}

const range = (from: number, to: number, prefix: string) => Array.from({ length: to - from }, (_, i) => `${prefix}${from + i}`)
const valuesOf = (names: string[]) => Object.fromEntries(names.map((name) => [name, name]))

describe.each([
  ['SQLite', sqlitePlace],
  ['PostgreSQL', postgresPlace],
] as const)('%s', (name, makePlace) => {
  it('keeps at most MAX_TOMBSTONES deleted-variable rows while 10,000 distinct names are written and deleted', async () => {
    const place = await makePlace()
    try {
      const store = await place.open()
      const id = 'churn-session-1'
      await store.apply(id, { variables: { keep: 1 } })
      let most = 0
      // 100 rounds: 100 new names set, then deleted (versions 2 and 3, 4 and 5, …).
      for (let round = 0; round < 100; round++) {
        const names = range(round * 100, round * 100 + 100, 'n')
        await store.apply(id, { variables: valuesOf(names) })
        await store.apply(id, { deleted: names })
        most = Math.max(most, (await place.rows(id)).tombstones)
      }
      const rows = await place.rows(id)
      console.log(
        `${name}: ${rows.live + rows.tombstones} variable rows left after 10,000 names written and deleted (${rows.tombstones} tombstones; most at once ${most})`,
      )
      expect(most).toBeLessThanOrEqual(MAX_TOMBSTONES)
      // Compacted by the 11th, 22nd, … 99th delete (version 199): the last 100 deletions stay as tombstones.
      expect(rows).toEqual({ live: 1, tombstones: 100 })
      expect(await place.head(id)).toEqual({ compacted_through: 199, tombstones: 100 })
      const snapshot = await store.get(id)
      expect(snapshot).toMatchObject({ version: 201, variables: { keep: 1 } })
      expect(Object.keys(snapshot!.variables)).toEqual(['keep'])
    } finally {
      await place.close()
    }
  }, 120_000)

  it('a store whose copy is older than the compaction loads the session again: it never keeps a deleted variable', async () => {
    const place = await makePlace()
    try {
      const [reader, writer, other] = [await place.open(), await place.open(), await place.open()]
      const id = 'cached-session-1'
      const names = range(0, 1200, 'x')
      await other.apply(id, { variables: valuesOf(names) })
      // The reader and the writer keep version 1 in memory.
      for (const store of [reader, writer]) expect(Object.keys((await store.get(id))!.variables)).toHaveLength(1200)
      // Another store deletes 1,100 of them in 11 patches: the 11th compacts (version 12), so their tombstones are gone.
      for (let round = 0; round < 11; round++) await other.apply(id, { deleted: names.slice(round * 100, round * 100 + 100) })
      await other.apply(id, { variables: { after: true } })
      expect(await place.head(id)).toEqual({ compacted_through: 12, tombstones: 0 })
      expect(await place.rows(id)).toEqual({ live: 101, tombstones: 0 })
      const left = { ...valuesOf(names.slice(1100)), after: true }

      // A read from a copy of version 1 (< 12), and a write onto one: the deleted names are gone.
      expect((await reader.get(id))!.variables).toEqual(left)
      const { snapshot } = await writer.apply(id, { variables: { written: 1 } })
      expect(snapshot).toMatchObject({ version: 14, variables: { ...left, written: 1 } })
      expect(Object.keys(snapshot.variables)).toHaveLength(102)

      // A copy at or after the compaction catches up by the tombstones written since.
      await other.apply(id, { deleted: ['x1100', 'x1101'] })
      const after = { ...left, written: 1 } as Record<string, unknown>
      delete after.x1100
      delete after.x1101
      expect((await reader.get(id))!.variables).toEqual(after)
      expect((await writer.apply(id, { deleted: ['x1102'] })).snapshot.variables).not.toHaveProperty('x1101')
      expect(await place.rows(id)).toEqual({ live: 99, tombstones: 3 })
    } finally {
      await place.close()
    }
  }, 60_000)

  it('a session deleted and made again starts its compaction afresh', async () => {
    const place = await makePlace()
    try {
      const store = await place.open()
      const id = 'remade-session-1'
      await store.apply(id, { variables: valuesOf(range(0, 1100, 'y')) })
      await store.apply(id, { deleted: range(0, 1100, 'y') })
      expect(await place.head(id)).toEqual({ compacted_through: 2, tombstones: 0 })
      expect(await store.delete(id)).toBe(true)
      await store.apply(id, { variables: { a: 1 } })
      // Version 1 of the new session: no copy of an earlier version is of this session.
      expect(await place.head(id)).toEqual({ compacted_through: 1, tombstones: 0 })
      await store.apply(id, { deleted: ['a'] })
      expect(await place.head(id)).toEqual({ compacted_through: 1, tombstones: 1 })
      expect(await place.rows(id)).toEqual({ live: 0, tombstones: 1 })
    } finally {
      await place.close()
    }
  })
})
