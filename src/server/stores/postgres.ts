import type { Pool, PoolClient, PoolConfig } from 'pg'
import { mergeSession, type SessionRecord } from '../merge.js'
import { defineStore, expiryCutoff, isExpired, summarize, type SessionStore, type StoreOptions } from './types.js'

export interface PostgresStoreOptions extends StoreOptions {
  /** Table name; default `workflow_sessions`. */
  table?: string
  /** Passed to pg's Pool (size, timeouts, ssl). */
  pool?: Omit<PoolConfig, 'connectionString'>
}

/** The NOTIFY channel that carries `{ "id", "version" }` of each applied change to every server. */
export const CHANGE_CHANNEL = 'workflow_session_changes'

/**
 * Sessions in PostgreSQL, for several app servers sharing one database: one row per session
 * (`json`, kept verbatim: the merge relies on key order to forget the oldest clients), an index for "my sessions, newest first". `apply` runs in one transaction that
 * takes a per-session advisory lock, merges (the same `mergeSession` as every store), writes,
 * and NOTIFYs the change: safe under concurrent writers on different servers. The schema is
 * created on open. `watch()` hears the changes made through any server (LISTEN).
 *
 * @example
 * const store = await postgresStore(process.env.DATABASE_URL!)
 */
export async function postgresStore(url: string, options: PostgresStoreOptions = {}): Promise<SessionStore & { watch: NonNullable<SessionStore['watch']> }> {
  const { default: pg } = await import('pg').catch((error: unknown) => {
    throw new Error(`postgresStore needs the pg package: npm install pg (${(error as Error).message})`)
  })
  const table = options.table ?? 'workflow_sessions'
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(table)) throw new Error(`postgresStore: "${table}" is not a plain table name`)
  const pool: Pool = new pg.Pool({ connectionString: url, max: 10, ...options.pool })
  await pool.query(`
    CREATE TABLE IF NOT EXISTS ${table} (
      id         text PRIMARY KEY,
      user_id    text,
      updated_at timestamptz NOT NULL,
      record     json NOT NULL
    );
    CREATE INDEX IF NOT EXISTS ${table}_user_newest ON ${table} (user_id, updated_at DESC);
    CREATE INDEX IF NOT EXISTS ${table}_newest ON ${table} (updated_at DESC);
  `)

  const read = async (db: Pool | PoolClient, sessionId: string): Promise<SessionRecord | null> => {
    const { rows } = await db.query<{ record: SessionRecord }>(`SELECT record FROM ${table} WHERE id = $1`, [sessionId])
    const record = rows[0]?.record ?? null
    return record && !isExpired(record, options.ttlMs) ? record : null
  }
  const cutoff = () => (options.ttlMs === undefined ? '-infinity' : expiryCutoff(options.ttlMs))

  async function inTransaction<T>(sessionId: string, work: (db: PoolClient) => Promise<T>): Promise<T> {
    const db = await pool.connect()
    try {
      await db.query('BEGIN')
      // One writer per session at a time, across every server sharing the database.
      await db.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [sessionId])
      const result = await work(db)
      await db.query('COMMIT')
      return result
    } catch (error) {
      await db.query('ROLLBACK').catch(() => {})
      throw error
    } finally {
      db.release()
    }
  }

  let listener: PoolClient | undefined
  let closing: Promise<void> | undefined
  const watchers = new Set<(sessionId: string, version: number) => void>()

  const store = defineStore(
    {
      get: async (sessionId) => (await read(pool, sessionId))?.snapshot ?? null,
      apply: (sessionId, change, limits) =>
        inTransaction(sessionId, async (db) => {
          const { record, applied } = mergeSession(await read(db, sessionId), sessionId, change, new Date(), limits)
          if (applied) {
            await db.query(
              `INSERT INTO ${table} (id, user_id, updated_at, record) VALUES ($1, $2, $3, $4)
               ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, updated_at = excluded.updated_at, record = excluded.record`,
              [sessionId, record.snapshot.userId ?? null, record.snapshot.updatedAt, JSON.stringify(record)],
            )
            await db.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, JSON.stringify({ id: sessionId, version: record.snapshot.version })])
          }
          return { snapshot: record.snapshot, applied }
        }),
      delete: (sessionId) =>
        inTransaction(sessionId, async (db) => (await read(db, sessionId)) !== null && ((await db.query(`DELETE FROM ${table} WHERE id = $1`, [sessionId])).rowCount ?? 0) > 0),
      async list({ userId, limit = 50, offset = 0 } = {}) {
        const { rows } = await pool.query<{ record: SessionRecord }>(
          `SELECT record FROM ${table} WHERE ($1::text IS NULL OR user_id = $1) AND updated_at > $2::timestamptz
           ORDER BY updated_at DESC, id LIMIT $3 OFFSET $4`,
          [userId ?? null, cutoff(), limit, offset],
        )
        return rows.map((row) => summarize(row.record.snapshot))
      },
      async purgeExpired() {
        if (options.ttlMs === undefined) return 0
        return (await pool.query(`DELETE FROM ${table} WHERE updated_at <= $1::timestamptz`, [cutoff()])).rowCount ?? 0
      },
      async close() {
        listener?.release()
        listener = undefined
        closing ??= pool.end()
        await closing
      },
    },
    options,
  )

  return {
    ...store,
    /** Hears every applied change, from any server: LISTEN on one pooled connection, opened on first use. */
    watch(onChange) {
      watchers.add(onChange)
      if (!listener) {
        void pool.connect().then(async (db) => {
          listener = db
          db.on('notification', (message) => {
            try {
              const { id, version } = JSON.parse(message.payload ?? '') as { id: string; version: number }
              for (const watcher of watchers) watcher(id, version)
            } catch {
              // Not ours.
            }
          })
          await db.query(`LISTEN ${CHANGE_CHANNEL}`)
        })
      }
      return () => void watchers.delete(onChange)
    },
  }
}
