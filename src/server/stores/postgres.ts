import type { ConnectionOptions } from 'node:tls'
import type { ClientConfig, Pool, PoolClient } from 'pg'
import { SessionProtocolError } from '../errors.js'
import type { SessionRecord } from '../merge.js'
import { defineStore } from './define.js'
import { watchChanges } from './postgres-listen.js'
import { asUnavailable, describeTarget, isConnectionError } from './postgres-errors.js'
import { expiryCutoff, isExpired, summarize } from './records.js'
import type { SessionStore, StoreOptions } from './types.js'

export interface PostgresStoreOptions extends StoreOptions {
  /** Table name; default `workflow_sessions`. */
  table?: string
  /** Passed to pg's Pool (size, timeouts, ssl). Default: 10 connections, 5 s to connect. */
  pool?: PostgresPoolOptions
}

/**
 * Settings of the store's node-postgres `Pool` (host, port, user and database come from the URL).
 * Declared here rather than taken from `pg`, so that this package's types compile without the
 * optional `pg` installed; any other `Pool` or `Client` setting passes through as is.
 */
export interface PostgresPoolOptions {
  /** Most connections open at once; default 10. */
  max?: number
  /** Connections kept open while idle; default 0. */
  min?: number
  /** Closes a connection idle this long; pg's default 10 000 ms, 0 never. */
  idleTimeoutMillis?: number
  /** How long to wait for a new connection before failing; default 5000 ms. */
  connectionTimeoutMillis?: number
  /** Replaces a connection after this many checkouts. */
  maxUses?: number
  /** Replaces a connection this long after it opened. */
  maxLifetimeSeconds?: number
  /** Lets the process exit while the pool holds only idle connections. */
  allowExitOnIdle?: boolean
  /** TLS: `true`, or Node's TLS options (`ca`, `rejectUnauthorized`, `servername`, ...). */
  ssl?: boolean | ConnectionOptions
  /** Server-side limit per statement, in ms (`false`: the server's setting). */
  statement_timeout?: number | false
  /** Client-side limit per query, in ms. */
  query_timeout?: number
  lock_timeout?: number
  idle_in_transaction_session_timeout?: number
  /** Shown in `pg_stat_activity`; default `workflow-session`. */
  application_name?: string
  keepAlive?: boolean
  keepAliveInitialDelayMillis?: number
  /** For credentials that rotate (a cloud IAM token): called for each new connection. */
  password?: string | (() => string | Promise<string>)
  /** The connection string is `postgresStore`'s first argument. */
  connectionString?: never
  [setting: string]: unknown
}

/** The NOTIFY channel that carries `{ "id", "version" }` of each applied change to every server. */
export const CHANGE_CHANNEL = 'workflow_session_changes'

/** The `application_name` of the connection that LISTENs (to tell it apart in `pg_stat_activity`). */
const LISTENER_NAME = 'workflow-session listen'

/**
 * Sessions in PostgreSQL, for several app servers sharing one database: one row per session
 * (`json`, kept verbatim: the merge relies on key order to forget the oldest clients), an index
 * for "my sessions, newest first". A write runs in one transaction that takes a per-session
 * advisory lock, merges, writes and NOTIFYs the change: safe under concurrent writers on
 * different servers. The schema is created on open. `watch()` hears the changes made through any
 * server (LISTEN on a connection of its own, re-established after the database comes back).
 *
 * When the database cannot be reached (restart, failover, network), every call fails with
 * `unavailable` (the handler answers 503 with `Retry-After`) and nothing is changed; the pool
 * opens new connections as soon as the database answers again. Opening the store on an
 * unreachable database fails with `unavailable` naming host and database.
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
  const connection: ClientConfig = { connectionString: url, connectionTimeoutMillis: 5000, application_name: 'workflow-session', ...options.pool }
  const pool: Pool = new pg.Pool({ max: 10, ...connection })
  // An idle connection the database ended (a restart) is dropped from the pool; the next query
  // opens a new one. Without a listener, the pool's 'error' event would end the process.
  pool.on('error', () => {})
  try {
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
  } catch (error) {
    await pool.end().catch(() => {})
    const reason = error instanceof AggregateError ? (error.errors[0] as Error | undefined)?.message : (error as Error).message
    throw new SessionProtocolError('unavailable', `postgresStore: cannot open the session table at ${describeTarget(url)}: ${reason || String(error)}`)
  }

  const read = async (db: Pool | PoolClient, sessionId: string): Promise<SessionRecord | null> => {
    const { rows } = await db.query<{ record: SessionRecord }>(`SELECT record FROM ${table} WHERE id = $1`, [sessionId])
    const record = rows[0]?.record ?? null
    return record && !isExpired(record, options.ttlMs) ? record : null
  }
  const cutoff = () => (options.ttlMs === undefined ? '-infinity' : expiryCutoff(options.ttlMs))

  async function inTransaction<T>(sessionId: string, work: (db: PoolClient) => Promise<T>): Promise<T> {
    const db = await pool.connect()
    // A checked-out connection the database ends between two queries emits 'error': the
    // query under way fails with it, and the connection is thrown away below.
    let broken = false
    const onError = () => (broken = true)
    db.on('error', onError)
    try {
      await db.query('BEGIN')
      // One writer per session at a time, across every server sharing the database.
      await db.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [sessionId])
      const result = await work(db)
      await db.query('COMMIT')
      return result
    } catch (error) {
      if (isConnectionError(error)) broken = true
      else await db.query('ROLLBACK').catch(() => (broken = true))
      throw error
    } finally {
      db.off('error', onError)
      db.release(broken)
    }
  }

  let listening: ReturnType<typeof watchChanges> | undefined
  let closing: Promise<void> | undefined

  const store = defineStore(
    {
      read: (sessionId) => asUnavailable(read(pool, sessionId)),
      update: (sessionId, decide) =>
        asUnavailable(
          inTransaction(sessionId, async (db) => {
            const { write, result } = decide(await read(db, sessionId))
            if (write === null) await db.query(`DELETE FROM ${table} WHERE id = $1`, [sessionId])
            else if (write) {
              await db.query(
                `INSERT INTO ${table} (id, user_id, updated_at, record) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, updated_at = excluded.updated_at, record = excluded.record`,
                [sessionId, write.snapshot.userId ?? null, write.snapshot.updatedAt, JSON.stringify(write)],
              )
              await db.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, JSON.stringify({ id: sessionId, version: write.snapshot.version })])
            }
            return result
          }),
        ),
      async list({ userId, limit, offset }) {
        const { rows } = await asUnavailable(
          pool.query<{ record: SessionRecord }>(
            `SELECT record FROM ${table} WHERE ($1::text IS NULL OR user_id = $1) AND updated_at > $2::timestamptz
             ORDER BY updated_at DESC, id LIMIT $3 OFFSET $4`,
            [userId ?? null, cutoff(), limit, offset],
          ),
        )
        return rows.map((row) => summarize(row.record.snapshot))
      },
      async *ids() {
        // In batches by id (keyset), so a long walk neither holds a transaction nor loads every id at once.
        for (let after = ''; ; ) {
          const { rows } = await asUnavailable(
            pool.query<{ id: string }>(`SELECT id FROM ${table} WHERE id > $1 AND updated_at > $2::timestamptz ORDER BY id LIMIT 500`, [after, cutoff()]),
          )
          for (const row of rows) yield row.id
          if (rows.length < 500) return
          after = rows[rows.length - 1]!.id
        }
      },
      async purgeExpired() {
        if (options.ttlMs === undefined) return 0
        return (await asUnavailable(pool.query(`DELETE FROM ${table} WHERE updated_at <= $1::timestamptz`, [cutoff()]))).rowCount ?? 0
      },
      async close() {
        listening?.stop()
        closing ??= pool.end()
        await closing
      },
      watch(onChange, onReconnect) {
        listening ??= watchChanges(() => new pg.Client({ ...connection, application_name: LISTENER_NAME }), CHANGE_CHANNEL)
        return listening.add(onChange, onReconnect)
      },
    },
    options,
  )
  return store as SessionStore & { watch: NonNullable<SessionStore['watch']> }
}
