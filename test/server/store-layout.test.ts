import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { postgresStore, type SessionSnapshot, sqliteStore } from '../../src/server/index.js'
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

/** The tables as the version before tombstone compaction made them (no compaction columns in the head). */
const PREVIOUS_SQLITE_SCHEMA = `
  CREATE TABLE ws_sessions (id TEXT PRIMARY KEY, user_id TEXT, workflow_id TEXT, version INTEGER NOT NULL, created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL, bytes INTEGER NOT NULL, clients TEXT NOT NULL);
  CREATE INDEX ws_sessions_by_user_newest ON ws_sessions (user_id, updated_at DESC);
  CREATE INDEX ws_sessions_by_newest ON ws_sessions (updated_at DESC);
  CREATE TABLE ws_variables (session_id TEXT NOT NULL, name TEXT NOT NULL, value TEXT, version INTEGER NOT NULL, PRIMARY KEY (session_id, name)) WITHOUT ROWID;
`
const previousPostgresSchema = (table: string) => `
  CREATE TABLE ${table} (id text PRIMARY KEY, user_id text, workflow_id text, version bigint NOT NULL, created_at text NOT NULL,
    updated_at text NOT NULL, bytes bigint NOT NULL, clients text NOT NULL);
  CREATE INDEX ${table}_user_newest ON ${table} (user_id, updated_at DESC);
  CREATE INDEX ${table}_newest ON ${table} (updated_at DESC);
  CREATE TABLE ${table}_variables (session_id text NOT NULL, name text NOT NULL, value text, version bigint NOT NULL, PRIMARY KEY (session_id, name));
  CREATE INDEX ${table}_variables_by_version ON ${table}_variables (session_id, version);
`
/** A session of version 3 as the previous version left it: `kept` (version 1) and 1,500 tombstones (version 2). */
const PREVIOUS_TIME = '2026-01-02T03:04:05.678Z'
const previousHead = ['previous-session-1', null, null, 3, PREVIOUS_TIME, PREVIOUS_TIME, 10, '[]'] as const
const previousRows = [['kept', '1', 1], ...Array.from({ length: 1500 }, (_, i) => [`gone${i}`, null, 2])] as Array<
  [string, string | null, number]
>

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
    expect(await store.apply('release-session-1', { variables: { note: 'next' }, clientId: 'tab-a', seq: 5 })).toMatchObject({
      applied: true,
      snapshot: { version: 3 },
    })
    expect((await store.list({ userId: 'ada' })).map((summary) => summary.sessionId)).toEqual(['release-session-1'])
    await store.close()
    const tables = new Database(path).prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all()
    expect(tables).toEqual([{ name: 'ws_runs' }, { name: 'ws_sessions' }, { name: 'ws_variables' }])
  })

  it('writes one variable row for a one-key patch on a session of 10,000 variables', async () => {
    const path = join(await place(), 'big.db')
    const store = await sqliteStore(path)
    for (let start = 0; start < 10_000; start += 1000) {
      await store.apply('big-session-1', {
        variables: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`v${start + i}`, `value ${start + i}`])),
      })
    }
    const { snapshot } = await store.apply('big-session-1', { variables: { v42: 'changed' } })
    await store.close()
    const db = new Database(path)
    expect(db.prepare('SELECT count(*) AS rows FROM ws_variables WHERE session_id = ?').get('big-session-1')).toEqual({ rows: 10_000 })
    expect(db.prepare('SELECT name, value FROM ws_variables WHERE version = ?').all(snapshot.version)).toEqual([
      { name: 'v42', value: '"changed"' },
    ])
    // The size is kept as variables change, and is the size of the JSON the snapshot has.
    const { bytes } = db.prepare('SELECT bytes FROM ws_sessions WHERE id = ?').get('big-session-1') as { bytes: number }
    expect(bytes).toBe(Buffer.byteLength(JSON.stringify(snapshot.variables)))
  })

  it("adds the compaction columns to the tables of the previous version, with each session's count of its tombstones", async () => {
    const path = join(await place(), 'previous.db')
    const old = new Database(path)
    old.exec(PREVIOUS_SQLITE_SCHEMA)
    old.prepare('INSERT INTO ws_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)').run(...previousHead)
    old
      .prepare('INSERT INTO ws_sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
      .run('previous-session-2', null, null, 1, PREVIOUS_TIME, PREVIOUS_TIME, 7, '[]')
    const insert = old.prepare('INSERT INTO ws_variables VALUES (?, ?, ?, ?)')
    for (const [name, value, version] of previousRows) insert.run('previous-session-1', name, value, version)
    insert.run('previous-session-2', 'a', '1', 1)
    old.close()
    // Twice at once, as two processes starting together: one adds the columns, the other finds them.
    const [store, again] = await Promise.all([sqliteStore(path), sqliteStore(path)])
    const db = new Database(path)
    const heads = db.prepare('SELECT id, compacted_through, tombstones FROM ws_sessions ORDER BY id')
    expect(heads.all()).toEqual([
      { id: 'previous-session-1', compacted_through: 0, tombstones: 1500 },
      { id: 'previous-session-2', compacted_through: 0, tombstones: 0 },
    ])
    expect(db.prepare("SELECT sql FROM sqlite_master WHERE name = 'ws_variables_tombstones'").get()).toEqual({
      sql: 'CREATE INDEX ws_variables_tombstones ON ws_variables (session_id) WHERE value IS NULL',
    })
    expect(await store.get('previous-session-1')).toMatchObject({ version: 3, variables: { kept: 1 } })
    // The next deletion takes the count past the bound: every tombstone goes.
    await again.apply('previous-session-1', { deleted: ['kept'] })
    expect(heads.all()[0]).toEqual({ id: 'previous-session-1', compacted_through: 4, tombstones: 0 })
    expect(db.prepare('SELECT count(*) AS rows FROM ws_variables WHERE session_id = ?').get('previous-session-1')).toEqual({ rows: 0 })
    expect(await store.get('previous-session-1')).toMatchObject({ version: 4, variables: {} })
    db.close()
    await Promise.all([store.close(), again.close()])
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
        await admin.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4)`, [
          parsed.snapshot.sessionId,
          parsed.snapshot.userId ?? null,
          parsed.snapshot.updatedAt,
          record,
        ])
      }
      sqlite.close()
    } finally {
      await admin.end()
    }
    const store = await postgresStore(DATABASE_URL, { table })
    for (const snapshot of await releaseSnapshots()) expect(await store.get(snapshot.sessionId)).toEqual(snapshot)
    expect((await store.apply('release-session-1', { variables: { note: 'again' }, clientId: 'tab-a', seq: 4 })).applied).toBe(false)
    expect((await store.apply('release-session-2', { variables: { n: 43 }, clientId: 'tab-b', seq: 2 })).snapshot).toMatchObject({
      version: 2,
      workflowId: 'checkout',
    })
    await store.close()
  })

  it("adds the compaction columns to the tables of the previous version, with each session's count of its tombstones", async () => {
    const table = freshTable()
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    try {
      await admin.query(previousPostgresSchema(table))
      await admin.query(`INSERT INTO ${table} VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, [...previousHead])
      await admin.query(
        `INSERT INTO ${table}_variables SELECT $1, name, value, version FROM unnest($2::text[], $3::text[], $4::bigint[]) AS t(name, value, version)`,
        [
          'previous-session-1',
          previousRows.map(([name]) => name),
          previousRows.map(([, value]) => value),
          previousRows.map(([, , version]) => version),
        ],
      )
      const [store, again] = await Promise.all([postgresStore(DATABASE_URL, { table }), postgresStore(DATABASE_URL, { table })])
      const head = async () =>
        (await admin.query(`SELECT compacted_through::int, tombstones::int FROM ${table} WHERE id = $1`, ['previous-session-1'])).rows[0]
      expect(await head()).toEqual({ compacted_through: 0, tombstones: 1500 })
      const index = await admin.query(`SELECT indexdef FROM pg_indexes WHERE indexname = $1`, [
        `${table}_variables_tombstones`.slice(0, 63),
      ])
      expect(index.rows[0].indexdef).toMatch(/\(session_id\) WHERE \(value IS NULL\)$/)
      expect(await store.get('previous-session-1')).toMatchObject({ version: 3, variables: { kept: 1 } })
      await again.apply('previous-session-1', { deleted: ['kept'] })
      expect(await head()).toEqual({ compacted_through: 4, tombstones: 0 })
      expect((await admin.query(`SELECT count(*)::int AS rows FROM ${table}_variables`)).rows).toEqual([{ rows: 0 }])
      expect(await store.get('previous-session-1')).toMatchObject({ version: 4, variables: {} })
      await Promise.all([store.close(), again.close()])
    } finally {
      await admin.end()
    }
  })

  it('writes one variable row for a one-key patch on a session of 10,000 variables', async () => {
    const table = freshTable()
    const store = await postgresStore(DATABASE_URL, { table })
    for (let start = 0; start < 10_000; start += 1000) {
      await store.apply('big-session-1', {
        variables: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`v${start + i}`, `value ${start + i}`])),
      })
    }
    const { snapshot } = await store.apply('big-session-1', { variables: { v42: 'changed' } })
    await store.close()
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    try {
      expect(
        (await admin.query(`SELECT count(*)::int AS rows FROM ${table}_variables WHERE session_id = $1`, ['big-session-1'])).rows,
      ).toEqual([{ rows: 10_000 }])
      expect((await admin.query(`SELECT name, value FROM ${table}_variables WHERE version = $1`, [snapshot.version])).rows).toEqual([
        { name: 'v42', value: '"changed"' },
      ])
    } finally {
      await admin.end()
    }
  })
})
