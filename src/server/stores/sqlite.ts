import type { Database } from 'better-sqlite3'
import { SessionProtocolError } from '../errors.js'
import type { SessionRecord } from '../merge.js'
import { defineStore } from './define.js'
import { expiryCutoff, isExpired, summarize } from './records.js'
import type { Decision, SessionStore, StoreOptions } from './types.js'

export interface SqliteStoreOptions extends StoreOptions {
  /**
   * `full` (default): a confirmed patch survives a power cut. `normal`: faster; survives a crash
   * of the process but a power cut may lose the last confirmed patches (never corrupts).
   */
  synchronous?: 'full' | 'normal'
  /**
   * How long a write waits for another process's write to the same file before it gives up
   * (the request then answers 503 `unavailable`, and the client retries); default 5000 ms.
   */
  busyTimeoutMs?: number
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS sessions (
    id         TEXT PRIMARY KEY,
    user_id    TEXT,
    updated_at TEXT NOT NULL,
    record     TEXT NOT NULL
  );
  CREATE INDEX IF NOT EXISTS sessions_by_user_newest ON sessions (user_id, updated_at DESC);
  CREATE INDEX IF NOT EXISTS sessions_by_newest ON sessions (updated_at DESC);
`

/**
 * Sessions in one SQLite file (better-sqlite3, WAL): the embedded default. Each patch is one
 * `BEGIN IMMEDIATE` transaction (read, merge, write, client `seq`), so several processes may share
 * the file safely: a writer that finds the file locked by another waits (`busyTimeoutMs`).
 *
 * @example
 * const store = await sqliteStore('.data/sessions.db')
 */
export async function sqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<SessionStore> {
  const { default: Sqlite } = await import('better-sqlite3').catch((error: unknown) => {
    throw new Error(`sqliteStore needs the better-sqlite3 package: npm install better-sqlite3 (${(error as Error).message})`)
  })
  if (path !== ':memory:') {
    const [{ mkdir }, { dirname }] = await Promise.all([import('node:fs/promises'), import('node:path')])
    await mkdir(dirname(path), { recursive: true })
  }
  const db: Database = new Sqlite(path, { timeout: options.busyTimeoutMs ?? 5000 })
  busyAsUnavailable(() => {
    db.pragma('journal_mode = WAL')
    db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
    db.exec(SCHEMA)
  })

  const select = db.prepare<[string], { record: string }>('SELECT record FROM sessions WHERE id = ?')
  const upsert = db.prepare<[string, string | null, string, string]>(
    `INSERT INTO sessions (id, user_id, updated_at, record) VALUES (?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, updated_at = excluded.updated_at, record = excluded.record`,
  )
  const remove = db.prepare<[string]>('DELETE FROM sessions WHERE id = ?')
  const purge = db.prepare<[string]>('DELETE FROM sessions WHERE updated_at <= ?')
  const listAll = db.prepare<[string, number, number], { record: string }>(
    'SELECT record FROM sessions WHERE updated_at > ? ORDER BY updated_at DESC, id LIMIT ? OFFSET ?',
  )
  const listMine = db.prepare<[string, string, number, number], { record: string }>(
    'SELECT record FROM sessions WHERE user_id = ? AND updated_at > ? ORDER BY updated_at DESC, id LIMIT ? OFFSET ?',
  )

  const read = (sessionId: string): SessionRecord | null => {
    const row = select.get(sessionId)
    if (!row) return null
    const record = JSON.parse(row.record) as SessionRecord
    return isExpired(record, options.ttlMs) ? null : record
  }
  const listed = (rows: Array<{ record: string }>) => rows.map((row) => summarize((JSON.parse(row.record) as SessionRecord).snapshot))
  const cutoff = () => (options.ttlMs === undefined ? '' : expiryCutoff(options.ttlMs))

  const updateInTransaction = db.transaction((sessionId: string, decide: (current: SessionRecord | null) => Decision<unknown>) => {
    const { write, result } = decide(read(sessionId))
    if (write === null) remove.run(sessionId)
    else if (write) upsert.run(sessionId, write.snapshot.userId ?? null, write.snapshot.updatedAt, JSON.stringify(write))
    return result
  })
  const idsBatch = db.prepare<[string, string, number], { id: string }>('SELECT id FROM sessions WHERE id > ? AND updated_at > ? ORDER BY id LIMIT ?')

  return defineStore(
    {
      read: async (sessionId) => read(sessionId),
      update: async <T>(sessionId: string, decide: (current: SessionRecord | null) => Decision<T>) =>
        busyAsUnavailable(() => updateInTransaction.immediate(sessionId, decide) as T),
      async list({ userId, limit, offset }) {
        return listed(userId === undefined ? listAll.all(cutoff(), limit, offset) : listMine.all(userId, cutoff(), limit, offset))
      },
      async *ids() {
        // In batches by id, so a long walk neither holds a read transaction nor loads every id at once.
        for (let after = ''; ; ) {
          const rows = idsBatch.all(after, cutoff(), 500)
          for (const row of rows) yield row.id
          if (rows.length < 500) return
          after = rows[rows.length - 1]!.id
        }
      },
      async purgeExpired() {
        return options.ttlMs === undefined ? 0 : busyAsUnavailable(() => purge.run(cutoff()).changes)
      },
      async close() {
        if (db.open) db.close()
      },
    },
    options,
  )
}

/** Runs `work`; a database still locked by another process after the busy timeout is `unavailable` (503, retried). */
function busyAsUnavailable<T>(work: () => T): T {
  try {
    return work()
  } catch (error) {
    if ((error as { code?: string }).code?.startsWith('SQLITE_BUSY')) {
      throw new SessionProtocolError('unavailable', 'The session database is busy with another process; try again')
    }
    throw error
  }
}
