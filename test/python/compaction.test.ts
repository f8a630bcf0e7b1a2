import { join } from 'node:path'
import Database from 'better-sqlite3'
import pg from 'pg'
import { describe, expect, it } from 'vitest'
import { postgresStore, type SessionSnapshot, type SessionStore, sqliteStore } from '../../src/server/index.js'
import { MAX_TOMBSTONES } from '../../src/server/stores/session-cache.js'
import { sharedScratch } from './shared-scratch.js'
import { PYTHON, runPython, startPython, stopAllPython } from './venv.js'

// Tombstone compaction across languages: Python and Node servers on one database count the
// tombstones in the same head column and compact by the same rule, so a Node store holding a copy
// from before a compaction made by the Python server loads the session again and never keeps a
// variable the Python server deleted.

const scratch = sharedScratch('ws-python-compaction-')

const post = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

it('the Python stores keep the same bound', async () => {
  const { code, output } = await runPython(PYTHON, ['-c', 'from workflow_session.stores.rows import MAX_TOMBSTONES; print(MAX_TOMBSTONES)'])
  expect([code, output.trim()]).toEqual([0, String(MAX_TOMBSTONES)])
})

/** A database both servers share: the Node store, the Python server's store argument, the head's compaction columns. */
interface Shared {
  node: SessionStore
  store: string
  head(sessionId: string): Promise<{ compacted_through: number; tombstones: number }>
  rows(sessionId: string): Promise<{ live: number; tombstones: number }>
  close(): Promise<void>
}

async function sqliteShared(): Promise<Shared> {
  const file = join(scratch.place, 'shared.db')
  const node = await sqliteStore(file)
  const db = new Database(file, { readonly: true })
  return {
    node,
    store: `sqlite:${file}`,
    head: async (id) =>
      db.prepare('SELECT compacted_through, tombstones FROM ws_sessions WHERE id = ?').get(id) as {
        compacted_through: number
        tombstones: number
      },
    rows: async (id) =>
      db.prepare('SELECT count(value) AS live, count(*) - count(value) AS tombstones FROM ws_variables WHERE session_id = ?').get(id) as {
        live: number
        tombstones: number
      },
    close: async () => {
      db.close()
      await node.close()
    },
  }
}

async function postgresShared(): Promise<Shared> {
  const url = await scratch.database('ws_compaction')
  const node = await postgresStore(url)
  const db = new pg.Client({ connectionString: url })
  await db.connect()
  return {
    node,
    store: url,
    head: async (id) =>
      (await db.query(`SELECT compacted_through::int, tombstones::int FROM workflow_sessions WHERE id = $1`, [id])).rows[0],
    rows: async (id) =>
      (
        await db.query(
          `SELECT count(value)::int AS live, (count(*) - count(value))::int AS tombstones FROM workflow_sessions_variables WHERE session_id = $1`,
          [id],
        )
      ).rows[0],
    close: async () => {
      await db.end()
      await node.close()
    },
  }
}

describe.each([
  ['SQLite', sqliteShared],
  ['PostgreSQL', postgresShared],
] as const)('%s', (_name, share) => {
  it('a Node store with a copy from before the Python server compacted never keeps a deleted variable, and each side goes on counting', async () => {
    const shared = await share()
    try {
      const { node } = shared
      const python = await startPython(['-m', 'workflow_session.serve', '--store', shared.store, '--port', '0'], 'workflow-session on')
      const id = `compaction-${Math.random().toString(36).slice(2, 12)}`
      const names = Array.from({ length: 1200 }, (_, i) => `x${i}`)
      await node.apply(id, { variables: Object.fromEntries(names.map((name) => [name, name])) })
      // Node deletes 600 names (versions 2 to 7; its copy is of version 7), then Python 500 more:
      // the count passes 1,000 at Python's fifth patch (version 12), which removes every tombstone.
      for (let round = 0; round < 6; round++) await node.apply(id, { deleted: names.slice(round * 100, round * 100 + 100) })
      expect(await shared.head(id)).toEqual({ compacted_through: 1, tombstones: 600 })
      for (let round = 6; round < 11; round++) {
        const response = await fetch(`${python.url}/${id}`, post({ deleted: names.slice(round * 100, round * 100 + 100) }))
        expect(response.status, python.output()).toBe(200)
      }
      await fetch(`${python.url}/${id}`, post({ variables: { after: true } }))
      expect(await shared.head(id)).toEqual({ compacted_through: 12, tombstones: 0 })
      expect(await shared.rows(id)).toEqual({ live: 101, tombstones: 0 })

      // Node's copy (version 7) is older than the compaction: it loads the session again.
      const left = { ...Object.fromEntries(names.slice(1100).map((name) => [name, name])), after: true }
      expect(await node.get(id)).toMatchObject({ version: 13, variables: left })
      expect(Object.keys((await node.get(id))!.variables)).toHaveLength(101)

      // Node deletes one more (counted from 0 after Python's compaction); Python reads it gone.
      await node.apply(id, { deleted: ['x1100'] })
      expect(await shared.head(id)).toEqual({ compacted_through: 12, tombstones: 1 })
      const read = (await (await fetch(`${python.url}/${id}`)).json()) as SessionSnapshot
      expect(read.version).toBe(14)
      expect(Object.keys(read.variables)).toHaveLength(100)
      expect(read.variables).not.toHaveProperty('x1100')
    } finally {
      await stopAllPython()
      await shared.close()
    }
  }, 60_000)
})
