import Database from 'better-sqlite3'
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { postgresStore, sqliteStore, type SessionSnapshot } from '../../src/server/index.js'
import { DATABASE_URL, dropTestTables, freshTable } from '../postgres.js'

// How the SQL stores lay sessions out, seen from the database: a head row and a row per variable,
// so a one-key patch writes one variable row whatever the session's size; and sessions written
// by 0.1 (one JSON row per session) are migrated when the store opens.

const fixture = (name: string) => new URL(`./fixtures/${name}`, import.meta.url)
const places: string[] = []
afterAll(async () => {
  await Promise.all(places.map((place) => rm(place, { recursive: true, force: true })))
  await dropTestTables()
})
async function place() {
  const dir = await mkdtemp(join(tmpdir(), 'ws-layout-'))
  places.push(dir)
  return dir
}

/** What 0.1 stored, as its own get() returned it (recorded with the file). */
async function releaseSnapshots(): Promise<SessionSnapshot[]> {
  return JSON.parse(await readFile(fixture('sessions-0.1.0.json'), 'utf8')) as SessionSnapshot[]
}

describe('SQLite', () => {
  it('migrates a database file made by 0.1: every session, its owner, workflow and applied seqs', async () => {
    const path = join(await place(), 'sessions.db')
    await copyFile(fixture('sessions-0.1.0.db'), path)
    const store = await sqliteStore(path)
    for (const snapshot of await releaseSnapshots()) expect(await store.get(snapshot.sessionId)).toEqual(snapshot)
    // tab-a's seq 4 was applied by 0.1: a replay is still not applied; seq 5 is.
    expect((await store.apply('release-session-1', { variables: { note: 'again' }, clientId: 'tab-a', seq: 4 })).applied).toBe(false)
    expect(await store.apply('release-session-1', { variables: { note: 'next' }, clientId: 'tab-a', seq: 5 })).toMatchObject({ applied: true, snapshot: { version: 3 } })
    expect((await store.list({ userId: 'ada' })).map((summary) => summary.sessionId)).toEqual(['release-session-1'])
    await store.close()
    const tables = new Database(path).prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all()
    expect(tables).toEqual([{ name: 'ws_sessions' }, { name: 'ws_variables' }])
  })

  it('writes one variable row for a one-key patch on a session of 10,000 variables', async () => {
    const path = join(await place(), 'big.db')
    const store = await sqliteStore(path)
    for (let start = 0; start < 10_000; start += 1000) {
      await store.apply('big-session-1', { variables: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`v${start + i}`, `value ${start + i}`])) })
    }
    const { snapshot } = await store.apply('big-session-1', { variables: { v42: 'changed' } })
    await store.close()
    const db = new Database(path)
    expect(db.prepare('SELECT count(*) AS rows FROM ws_variables WHERE session_id = ?').get('big-session-1')).toEqual({ rows: 10_000 })
    expect(db.prepare('SELECT name, value FROM ws_variables WHERE version = ?').all(snapshot.version)).toEqual([{ name: 'v42', value: '"changed"' }])
    // The size is kept as variables change, and is the size of the JSON the snapshot has.
    const { bytes } = db.prepare('SELECT bytes FROM ws_sessions WHERE id = ?').get('big-session-1') as { bytes: number }
    expect(bytes).toBe(Buffer.byteLength(JSON.stringify(snapshot.variables)))
  })

  it('commits writes that arrive together, each in a savepoint: one refused write leaves the others', async () => {
    const store = await sqliteStore(join(await place(), 'group.db'))
    const results = await Promise.allSettled([
      store.apply('group-session-1', { variables: { a: 1 } }),
      store.apply('group-session-2', { variables: { big: 'x'.repeat(2000) } }, { maxBytes: 1000 }),
      store.apply('group-session-1', { variables: { b: 2 } }),
    ])
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled'])
    expect(await store.get('group-session-1')).toMatchObject({ version: 2, variables: { a: 1, b: 2 } })
    expect(await store.get('group-session-2')).toBeNull()
    await store.close()
  })
})

describe('PostgreSQL', () => {
  it('migrates a table of 0.1 (one json record per session) when the store opens', async () => {
    const table = freshTable()
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    try {
      await admin.query(`CREATE TABLE ${table} (id text PRIMARY KEY, user_id text, updated_at timestamptz NOT NULL, record json NOT NULL)`)
      // A copy: opening the fixture itself would leave SQLite's -wal and -shm files beside it.
      const copy = join(await place(), 'release.db')
      await copyFile(fixture('sessions-0.1.0.db'), copy)
      const sqlite = new Database(copy, { readonly: true })
      for (const { record } of sqlite.prepare('SELECT record FROM sessions').all() as Array<{ record: string }>) {
        const parsed = JSON.parse(record) as { snapshot: SessionSnapshot }
        await admin.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4)`, [parsed.snapshot.sessionId, parsed.snapshot.userId ?? null, parsed.snapshot.updatedAt, record])
      }
      sqlite.close()
    } finally {
      await admin.end()
    }
    const store = await postgresStore(DATABASE_URL, { table })
    for (const snapshot of await releaseSnapshots()) expect(await store.get(snapshot.sessionId)).toEqual(snapshot)
    expect((await store.apply('release-session-1', { variables: { note: 'again' }, clientId: 'tab-a', seq: 4 })).applied).toBe(false)
    expect((await store.apply('release-session-2', { variables: { n: 43 }, clientId: 'tab-b', seq: 2 })).snapshot).toMatchObject({ version: 2, workflowId: 'checkout' })
    await store.close()
  })

  it('writes one variable row for a one-key patch on a session of 10,000 variables', async () => {
    const table = freshTable()
    const store = await postgresStore(DATABASE_URL, { table })
    for (let start = 0; start < 10_000; start += 1000) {
      await store.apply('big-session-1', { variables: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`v${start + i}`, `value ${start + i}`])) })
    }
    const { snapshot } = await store.apply('big-session-1', { variables: { v42: 'changed' } })
    await store.close()
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    try {
      expect((await admin.query(`SELECT count(*)::int AS rows FROM ${table}_variables WHERE session_id = $1`, ['big-session-1'])).rows).toEqual([{ rows: 10_000 }])
      expect((await admin.query(`SELECT name, value FROM ${table}_variables WHERE version = $1`, [snapshot.version])).rows).toEqual([{ name: 'v42', value: '"changed"' }])
    } finally {
      await admin.end()
    }
  })
})
