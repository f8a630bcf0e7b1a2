import type { Database } from 'better-sqlite3'
import { mergeSession, type SessionRecord } from '../merge.js'
import { defineStore, expiryCutoff, isExpired, summarize, type SessionStore, type StoreOptions } from './types.js'

export interface SqliteStoreOptions extends StoreOptions {
  /**
   * `full` (default): a confirmed patch survives a power cut. `normal`: faster; survives a crash
   * of the process but a power cut may lose the last confirmed patches (never corrupts).
   */
  synchronous?: 'full' | 'normal'
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
 * the file safely.
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
  const db: Database = new Sqlite(path)
  db.pragma('journal_mode = WAL')
  db.pragma(`synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
  db.pragma('busy_timeout = 5000')
  db.exec(SCHEMA)

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
  const cutoff = () => (options.ttlMs === undefined ? '' : expiryCutoff(options.ttlMs))

  const applyInTransaction = db.transaction((sessionId: string, change: Parameters<SessionStore['apply']>[1], limits: Parameters<SessionStore['apply']>[2]) => {
    const { record, applied } = mergeSession(read(sessionId), sessionId, change, new Date(), limits)
    if (applied) upsert.run(sessionId, record.snapshot.userId ?? null, record.snapshot.updatedAt, JSON.stringify(record))
    return { snapshot: record.snapshot, applied }
  })
  const deleteInTransaction = db.transaction((sessionId: string) => read(sessionId) !== null && remove.run(sessionId).changes > 0)

  return defineStore(
    {
      get: async (sessionId) => read(sessionId)?.snapshot ?? null,
      apply: async (sessionId, change, limits) => applyInTransaction.immediate(sessionId, change, limits),
      delete: async (sessionId) => deleteInTransaction.immediate(sessionId),
      async list({ userId, limit = 50, offset = 0 } = {}) {
        const rows = userId === undefined ? listAll.all(cutoff(), limit, offset) : listMine.all(userId, cutoff(), limit, offset)
        return rows.map((row) => summarize((JSON.parse(row.record) as SessionRecord).snapshot))
      },
      async purgeExpired() {
        return options.ttlMs === undefined ? 0 : purge.run(cutoff()).changes
      },
      async close() {
        if (db.open) db.close()
      },
    },
    options,
  )
}
