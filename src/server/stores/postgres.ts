import type { ConnectionOptions } from 'node:tls'
import type { ClientConfig, Pool, PoolClient } from 'pg'
import { SessionProtocolError } from '../errors.js'
import type { SessionHead } from '../merge.js'
import { defineStore } from './define.js'
import { importDriver } from './import-driver.js'
import { asUnavailable, describeTarget, isConnectionError } from './postgres-errors.js'
import { watchChanges } from './postgres-listen.js'
import { expiryCutoff, isExpired } from './records.js'
import {
  afterWrite,
  type Compaction,
  compactionOf,
  createSessionCache,
  currentOf,
  headColumns,
  headOf,
  type HeadRow,
  nextCompaction,
  sessionAt,
  type VariableRow,
  type WriteJob,
} from './session-cache.js'
import {
  changeLogFrom,
  copyLog,
  entryOf,
  fromSnapshotRecord,
  logChange,
  type RunRow,
  storedRunOf,
  type StoredSession,
  summaryOf,
  valueOfEntry,
} from './stored.js'
import { type CurrentRuns, MAX_FINISHED_RUNS, type SessionStore, type StoredRun, type StoreOptions } from './types.js'

export interface PostgresStoreOptions extends StoreOptions {
  /** Table name; default `workflow_sessions`. */
  table?: string
  /** Passed to pg's Pool (size, timeouts, ssl). Default: 10 connections, 5 s to connect. */
  pool?: PostgresPoolOptions
  /** Bytes of recently used sessions this process keeps in memory; default 64 MiB. */
  cacheBytes?: number
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
 * Sessions in PostgreSQL, for several app servers sharing one database: a head row per session
 * (table `table`, with an index for "my sessions, newest first") and a row per variable (table
 * `${table}_variables`), so a one-key patch writes two small rows whatever the session's size.
 * Writes to one session run in a transaction that takes a per-session advisory lock, merges,
 * writes and NOTIFYs the change: safe under concurrent writers on different servers. Patches of
 * one session that arrive while its transaction runs go together in the next one (one lock, one
 * write, one commit for all, each with its own version and answer). The schema is created on
 * open, and sessions of 0.1 (one JSON row each) are migrated then. `watch()` hears the changes
 * made through any server (LISTEN on a connection of its own, re-established after the database
 * comes back).
 *
 * When the database cannot be reached (restart, failover, network), every call fails with
 * `unavailable` (the handler answers 503 with `Retry-After`) and nothing is changed; the pool
 * opens new connections as soon as the database answers again. Opening the store on an
 * unreachable database fails with `unavailable` naming host and database.
 *
 * @example
 * const store = await postgresStore(process.env.DATABASE_URL!)
 */
export async function postgresStore(
  url: string,
  options: PostgresStoreOptions = {},
): Promise<SessionStore & { watch: NonNullable<SessionStore['watch']> }> {
  const { default: pg } = await importDriver<typeof import('pg')>('pg').catch((error: unknown) => {
    throw new Error(`postgresStore needs the pg package: npm install pg (${(error as Error).message})`)
  })
  const table = options.table ?? 'workflow_sessions'
  if (!/^[a-z_][a-z0-9_]{0,50}$/.test(table)) throw new Error(`postgresStore: "${table}" is not a plain table name`)
  const variables = `${table}_variables`
  const runsTable = `${table}_runs`
  const poolOptions = options.pool ?? {}
  const connection: ClientConfig = {
    connectionString: url,
    connectionTimeoutMillis: 5000,
    application_name: 'workflow-session',
    ...poolOptions,
  }
  const pool: Pool = new pg.Pool({ max: 10, ...connection })
  // An idle connection the database ended (a restart) is dropped from the pool; the next query
  // opens a new one. Without a listener, the pool's 'error' event would end the process.
  pool.on('error', () => {})
  try {
    await prepareSchema(pool, table, variables, runsTable)
  } catch (error) {
    await pool.end().catch(() => {})
    const reason = error instanceof AggregateError ? (error.errors[0] as Error | undefined)?.message : (error as Error).message
    throw new SessionProtocolError(
      'unavailable',
      `postgresStore: cannot open the session table at ${describeTarget(url)}: ${reason || String(error)}`,
    )
  }
  const cache = createSessionCache(options.cacheBytes)
  const cutoff = () => (options.ttlMs === undefined ? '' : expiryCutoff(options.ttlMs))

  /**
   * The head and, in the same statement (one snapshot), the variable rows newer than `since`:
   * tombstones included, to catch a copy of version `since` up. When the session was compacted
   * after `since` (a copy that old may have missed a deletion whose tombstone is gone), every live
   * row instead, and `since` comes back as -1 (as it does when asked with -1).
   */
  async function readRows(
    db: Pool | PoolClient,
    sessionId: string,
    since: number,
  ): Promise<{ head: SessionHead | null; compaction: Compaction; expired: boolean; rows: VariableRow[]; since: number }> {
    const { rows } = await db.query<HeadRow & { name: string | null; value: string | null }>(
      `SELECT h.*, v.name, v.value FROM ${table} h LEFT JOIN ${variables} v
         ON v.session_id = h.id AND v.version > (CASE WHEN h.compacted_through > $2 THEN -1 ELSE $2 END)
       WHERE h.id = $1`,
      [sessionId, since],
    )
    const none = { head: null, compaction: { compactedThrough: 0, tombstones: 0 }, rows: [], since }
    if (!rows[0]) return { ...none, expired: false }
    const head = headOf(rows[0])
    const compaction = compactionOf(rows[0])
    const from = compaction.compactedThrough > since ? -1 : since
    const found = rows.filter((row) => row.name !== null && (from >= 0 || row.value !== null)) as VariableRow[]
    if (!isExpired(head, options.ttlMs)) return { head, compaction, expired: false, rows: found, since: from }
    if (db === pool) purgeSoon(sessionId)
    return { ...none, expired: true }
  }

  /** Removes an expired session's rows (found on a read), unless it is live again by then. */
  function purgeSoon(sessionId: string): void {
    if (closing) return
    const jobs = waiting.get(sessionId) ?? []
    jobs.push({ decide: (current) => (current ? undefined : { head: null }), view: () => null, resolve: () => {}, reject: () => {} })
    waiting.set(sessionId, jobs)
    if (!running.has(sessionId)) void drain(sessionId)
  }

  /**
   * A read outside any lock: hands `use` the copy in memory when it is current (synchronously, so
   * that no write in this process changes it meanwhile), else reads (and keeps) a fresh one.
   */
  async function read<T>(sessionId: string, use: (stored: StoredSession | null) => T): Promise<T> {
    const cached = cache.get(sessionId)
    let found = await readRows(pool, sessionId, cached ? cached.head.version : -1)
    if (!found.head) return use(null)
    const current = cache.get(sessionId)
    if (current && current.head.version === found.head.version) return use(current)
    // The copy catches up when the rows are the ones newer than it (not every row: compacted since).
    const base = cached && found.since >= 0 && cached.head.createdAt === found.head.createdAt && cached.head.version < found.head.version
    // A copy of another session of this id, or newer than the database: every row, with their head.
    if (!base && found.since >= 0) found = await readRows(pool, sessionId, -1)
    const head = found.head
    if (!head) return use(null)
    // Never change a copy another caller may be using: build a new one.
    const fresh: StoredSession = base
      ? { head, entries: new Map(cached.entries), ...(cached.log && { log: copyLog(cached.log) }) }
      : { head, entries: new Map(), log: changeLogFrom(head.version) }
    for (const row of found.rows) {
      if (row.value === null) fresh.entries.delete(row.name)
      else fresh.entries.set(row.name, entryOf(row.name, row.value))
    }
    // Caught up: the rows newer than the copy are what changed since its version.
    if (base && fresh.log)
      logChange(
        fresh.log,
        head.version,
        found.rows.map((row) => row.name),
      )
    const now = cache.get(sessionId)
    if (!now || now.head.version < head.version) cache.keep(fresh)
    return use(fresh)
  }

  const waiting = new Map<string, WriteJob[]>()
  const running = new Set<string>()

  /** Runs the jobs of one session that arrived together in one transaction, then the next ones. */
  async function drain(sessionId: string): Promise<void> {
    running.add(sessionId)
    for (let jobs = waiting.get(sessionId); jobs; jobs = waiting.get(sessionId)) {
      waiting.delete(sessionId)
      await runBatch(sessionId, jobs)
    }
    running.delete(sessionId)
  }

  async function runBatch(sessionId: string, jobs: WriteJob[]): Promise<void> {
    let db: PoolClient | undefined
    let broken = false
    const onError = () => (broken = true)
    try {
      db = await pool.connect()
      db.on('error', onError)
      // The id is a checked session id ([A-Za-z0-9_-]): safe in the text, and BEGIN and the lock go in one round trip.
      if (!/^[A-Za-z0-9_-]+$/.test(sessionId)) throw new Error('unreachable: an unchecked session id')
      await db.query(`BEGIN; SELECT pg_advisory_xact_lock(hashtextextended('${sessionId}', 0))`)
      const cached = cache.get(sessionId)
      const since = cached ? cached.head.version : -1
      const found = await readRows(db, sessionId, since)
      let state: StoredSession | null = null
      if (found.head) {
        // Under the session's lock: a second read sees the same session.
        const rowsOf = async (asked: number) => (asked === found.since ? found.rows : (await readRows(db!, sessionId, asked)).rows)
        state = await sessionAt(cache, found.head, found.compaction.compactedThrough, rowsOf)
      } else cache.drop(sessionId)
      const wipe = found.expired
      // The runs the jobs ask for, and the running ones, read once under the lock.
      const runIds = jobs.flatMap((job) => (job.runId === undefined ? [] : [job.runId]))
      const runs = new Map<string, StoredRun>()
      if (runIds.length > 0 && found.head) {
        const { rows } = await db.query<RunRow>(
          `SELECT * FROM ${runsTable} WHERE session_id = $1 AND (status = 'running' OR run_id = ANY($2))`,
          [sessionId, runIds],
        )
        for (const row of rows) runs.set(row.run_id, storedRunOf(row))
      }
      const runWrites = new Map<string, StoredRun>()
      // Every job in turn, in memory; one write for all of them.
      const sets = new Map<string, string | null>()
      let finalHead: SessionHead | null | undefined
      let recreated = false
      for (const job of jobs) {
        try {
          const current: CurrentRuns =
            job.runId === undefined || !state
              ? { run: undefined, running: [] }
              : { run: runs.get(job.runId), running: [...runs.values()].filter((run) => run.status === 'running') }
          const write = job.decide(currentOf(state), current)
          if (write) {
            if (write.head === null) {
              sets.clear()
              runs.clear()
              runWrites.clear()
              recreated = true
              finalHead = null
            } else if (write.head) {
              for (const [name, json] of write.sets ?? []) sets.set(name, json)
              for (const name of write.deletes ?? []) sets.set(name, null)
              finalHead = write.head
            }
            state = afterWrite(cache, sessionId, state, write)
            for (const run of state ? (write.runs ?? []) : []) {
              runs.set(run.runId, run)
              runWrites.set(run.runId, run)
            }
          }
          job.result = job.view(state)
        } catch (error) {
          job.error = error
        }
      }
      if (finalHead === null) {
        await db.query(
          `WITH gone AS (DELETE FROM ${variables} WHERE session_id = $1), runs AS (DELETE FROM ${runsTable} WHERE session_id = $1)
           DELETE FROM ${table} WHERE id = $1`,
          [sessionId],
        )
      } else if (finalHead) {
        if (wipe || recreated) {
          await db.query(`WITH runs AS (DELETE FROM ${runsTable} WHERE session_id = $1) DELETE FROM ${variables} WHERE session_id = $1`, [
            sessionId,
          ])
        }
        let written = 0
        for (const json of sets.values()) if (json === null) written++
        const compaction = nextCompaction(found.head && !recreated ? found.compaction : null, finalHead.version, written)
        await db.query(
          `WITH vars AS (
             INSERT INTO ${variables} (session_id, name, value, version)
             SELECT $1, name, value, $4 FROM unnest($2::text[], $3::text[]) AS t(name, value)
             ON CONFLICT (session_id, name) DO UPDATE SET value = excluded.value, version = excluded.version
           ), head AS (
             INSERT INTO ${table} (id, user_id, workflow_id, version, created_at, updated_at, bytes, clients, compacted_through, tombstones, schema_version)
             VALUES ($1, $5, $6, $4, $7, $8, $9, $10, $13, $14, $15)
             ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, workflow_id = excluded.workflow_id, version = excluded.version,
               created_at = excluded.created_at, updated_at = excluded.updated_at, bytes = excluded.bytes, clients = excluded.clients,
               compacted_through = excluded.compacted_through, tombstones = excluded.tombstones, schema_version = excluded.schema_version
           )
           SELECT pg_notify($11, $12)`,
          [
            sessionId,
            [...sets.keys()],
            [...sets.values()],
            finalHead.version,
            finalHead.userId ?? null,
            finalHead.workflowId ?? null,
            finalHead.createdAt,
            finalHead.updatedAt,
            finalHead.bytes,
            JSON.stringify(finalHead.clients),
            CHANGE_CHANNEL,
            JSON.stringify({ id: sessionId, version: finalHead.version }),
            compaction.compactedThrough,
            compaction.tombstones,
            finalHead.schemaVersion ?? 0,
          ],
        )
        // After the statement that wrote this batch's own tombstones (one statement must not change a row twice).
        if (compaction.compact) await db.query(`DELETE FROM ${variables} WHERE session_id = $1 AND value IS NULL`, [sessionId])
      }
      if (finalHead !== null && runWrites.size > 0) {
        const written = [...runWrites.values()]
        await db.query(
          `INSERT INTO ${runsTable} (session_id, run_id, step, status, started_at, heartbeat_at, record)
           SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[])
           ON CONFLICT (session_id, run_id) DO UPDATE SET status = excluded.status, heartbeat_at = excluded.heartbeat_at, record = excluded.record`,
          [
            sessionId,
            written.map((run) => run.runId),
            written.map((run) => run.step),
            written.map((run) => run.status),
            written.map((run) => run.startedAt),
            written.map((run) => run.heartbeatAt),
            written.map((run) => run.record),
          ],
        )
        await db.query(
          `DELETE FROM ${runsTable} WHERE session_id = $1 AND status <> 'running' AND run_id NOT IN (
             SELECT run_id FROM ${runsTable} WHERE session_id = $1 AND status <> 'running' ORDER BY started_at DESC, run_id DESC LIMIT $2)`,
          [sessionId, MAX_FINISHED_RUNS],
        )
        // Every server's feed hears of the run (its watchers, its progress) as of a change of the session.
        if (finalHead === undefined && state)
          await db.query('SELECT pg_notify($1, $2)', [CHANGE_CHANNEL, JSON.stringify({ id: sessionId, version: state.head.version })])
      }
      await db.query('COMMIT')
      for (const job of jobs) {
        if (job.error === undefined) job.resolve(job.result)
        else job.reject(job.error)
      }
    } catch (error) {
      if (isConnectionError(error)) broken = true
      else await db?.query('ROLLBACK').catch(() => (broken = true))
      cache.drop(sessionId)
      const failure = isConnectionError(error)
        ? new SessionProtocolError('unavailable', 'The session database cannot be reached right now; try again')
        : error
      for (const job of jobs) job.reject(failure)
    } finally {
      db?.off('error', onError)
      db?.release(broken)
    }
  }

  let listening: ReturnType<typeof watchChanges> | undefined
  let closing: Promise<void> | undefined

  const store = defineStore(
    {
      read: (sessionId, use) => asUnavailable(read(sessionId, use)),
      update: (sessionId, _names, decide, view, runId) =>
        new Promise((resolve, reject) => {
          const jobs = waiting.get(sessionId) ?? []
          jobs.push({ decide, view, runId, resolve: resolve as (value: unknown) => void, reject })
          waiting.set(sessionId, jobs)
          if (!running.has(sessionId)) void drain(sessionId)
        }),
      async runs(sessionId, runId) {
        const { rows } = await asUnavailable(
          pool.query<RunRow>(
            `SELECT r.* FROM ${runsTable} r JOIN ${table} h ON h.id = r.session_id
             WHERE r.session_id = $1 AND ($2::text IS NULL OR r.run_id = $2) AND h.updated_at > $3 ORDER BY r.started_at DESC, r.run_id DESC`,
            [sessionId, runId ?? null, cutoff()],
          ),
        )
        return rows.map(storedRunOf)
      },
      async list({ userId, limit, offset }) {
        const { rows } = await asUnavailable(
          pool.query<HeadRow>(
            `SELECT * FROM ${table} WHERE ($1::text IS NULL OR user_id = $1) AND updated_at > $2 ORDER BY updated_at DESC, id LIMIT $3 OFFSET $4`,
            [userId ?? null, cutoff(), limit, offset],
          ),
        )
        return rows.map((row) => summaryOf(headOf(row)))
      },
      async *ids() {
        // In batches by id (keyset), so a long walk neither holds a transaction nor loads every id at once.
        for (let after = ''; ;) {
          const { rows } = await asUnavailable(
            pool.query<{ id: string }>(`SELECT id FROM ${table} WHERE id > $1 AND updated_at > $2 ORDER BY id LIMIT 500`, [
              after,
              cutoff(),
            ]),
          )
          for (const row of rows) yield row.id
          if (rows.length < 500) return
          after = rows[rows.length - 1]!.id
        }
      },
      async purgeExpired() {
        if (options.ttlMs === undefined) return 0
        const { rowCount } = await asUnavailable(
          pool.query(
            `WITH gone AS (DELETE FROM ${table} WHERE updated_at <= $1 RETURNING id),
               runs AS (DELETE FROM ${runsTable} WHERE session_id IN (SELECT id FROM gone))
             DELETE FROM ${variables} WHERE session_id IN (SELECT id FROM gone)`,
            [cutoff()],
          ),
        )
        return rowCount ?? 0
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

/**
 * Creates the tables (or adds the head's compaction columns to tables made before them, with
 * each session's count of its tombstones), and moves the sessions of 0.1 (one JSON `record` per
 * session) to them, once, under a lock. The Python store does the same under the same lock.
 */
async function prepareSchema(pool: Pool, table: string, variables: string, runs: string): Promise<void> {
  const db = await pool.connect()
  try {
    await db.query('BEGIN')
    await db.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [`workflow-session schema ${table}`])
    const { rows } = await db.query(
      `SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'record'`,
      [table],
    )
    if (rows.length > 0) await db.query(`ALTER TABLE ${table} RENAME TO ${table}_0_1`)
    await db.query(`
      CREATE TABLE IF NOT EXISTS ${table} (
        id          text PRIMARY KEY,
        user_id     text,
        workflow_id text,
        version     bigint NOT NULL,
        created_at  text NOT NULL,
        updated_at  text NOT NULL,
        bytes       bigint NOT NULL,
        clients     text NOT NULL,
        compacted_through bigint NOT NULL DEFAULT 0,
        tombstones  bigint NOT NULL DEFAULT 0,
        schema_version integer NOT NULL DEFAULT 0
      );
      CREATE INDEX IF NOT EXISTS ${table}_user_newest ON ${table} (user_id, updated_at DESC);
      CREATE INDEX IF NOT EXISTS ${table}_newest ON ${table} (updated_at DESC);
      CREATE TABLE IF NOT EXISTS ${variables} (
        session_id text NOT NULL,
        name       text NOT NULL,
        value      text,
        version    bigint NOT NULL,
        PRIMARY KEY (session_id, name)
      );
      CREATE INDEX IF NOT EXISTS ${variables}_by_version ON ${variables} (session_id, version);
      CREATE INDEX IF NOT EXISTS ${variables}_tombstones ON ${variables} (session_id) WHERE value IS NULL;
      CREATE TABLE IF NOT EXISTS ${runs} (
        session_id   text NOT NULL,
        run_id       text NOT NULL,
        step         text NOT NULL,
        status       text NOT NULL,
        started_at   text NOT NULL,
        heartbeat_at bigint NOT NULL,
        record       text NOT NULL,
        PRIMARY KEY (session_id, run_id)
      );
      CREATE INDEX IF NOT EXISTS ${runs}_by_session_newest ON ${runs} (session_id, started_at DESC);
    `)
    const compacted = await db.query(
      `SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'compacted_through'`,
      [table],
    )
    if (compacted.rows.length === 0) {
      await db.query(`
        ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS compacted_through bigint NOT NULL DEFAULT 0, ADD COLUMN IF NOT EXISTS tombstones bigint NOT NULL DEFAULT 0;
        UPDATE ${table} SET tombstones = c.n FROM (SELECT session_id, count(*) AS n FROM ${variables} WHERE value IS NULL GROUP BY session_id) c WHERE ${table}.id = c.session_id;
      `)
    }
    // Tables made before schema versions: 0, read as 1 (the Python store adds the same column).
    await db.query(`ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS schema_version integer NOT NULL DEFAULT 0`)
    if (rows.length > 0) {
      const old = await db.query<{ record: Parameters<typeof fromSnapshotRecord>[0] }>(`SELECT record FROM ${table}_0_1`)
      for (const { record } of old.rows) {
        const { head, entries } = fromSnapshotRecord(record)
        await db.query(
          `INSERT INTO ${table} (id, user_id, workflow_id, version, created_at, updated_at, bytes, clients, schema_version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
          [...headColumns(head)],
        )
        await db.query(
          `INSERT INTO ${variables} (session_id, name, value, version) SELECT $1, name, value, $4 FROM unnest($2::text[], $3::text[]) AS t(name, value)`,
          [head.sessionId, [...entries.keys()], [...entries].map(([name, entry]) => valueOfEntry(name, entry)), head.version],
        )
      }
      await db.query(`DROP TABLE ${table}_0_1`)
    }
    await db.query('COMMIT')
  } catch (error) {
    await db.query('ROLLBACK').catch(() => {})
    throw error
  } finally {
    db.release()
  }
}
