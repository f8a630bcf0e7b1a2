import { SessionProtocolError } from '../errors.js'
import { defineStore } from './define.js'
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
import { inTransaction, isBusy, openSqlite, type SqliteDatabase, type SqliteDriverName } from './sqlite-driver.js'
import { fromSnapshotRecord, type RunRow, storedRunOf, type StoredSession, summaryOf } from './stored.js'
import { type CurrentRuns, MAX_FINISHED_RUNS, type SessionStore, type StoreOptions } from './types.js'

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
  /** Bytes of recently used sessions this process keeps in memory; default 64 MiB. */
  cacheBytes?: number
  /**
   * The SQLite binding: `better-sqlite3`, or Node's built-in `node:sqlite` (Node 22.16+, 24,
   * 26; on Node 22 it prints an ExperimentalWarning once). Default: better-sqlite3 when the app
   * has it installed, else `node:sqlite`. Both write the same file format and tables.
   */
  driver?: SqliteDriverName
}

const SCHEMA = `
  CREATE TABLE IF NOT EXISTS ws_sessions (
    id          TEXT PRIMARY KEY,
    user_id     TEXT,
    workflow_id TEXT,
    version     INTEGER NOT NULL,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    clients     TEXT NOT NULL,
    compacted_through INTEGER NOT NULL DEFAULT 0,
    tombstones  INTEGER NOT NULL DEFAULT 0,
    schema_version INTEGER NOT NULL DEFAULT 0
  );
  CREATE INDEX IF NOT EXISTS ws_sessions_by_user_newest ON ws_sessions (user_id, updated_at DESC);
  CREATE INDEX IF NOT EXISTS ws_sessions_by_newest ON ws_sessions (updated_at DESC);
  CREATE TABLE IF NOT EXISTS ws_variables (
    session_id TEXT NOT NULL,
    name       TEXT NOT NULL,
    value      TEXT,
    version    INTEGER NOT NULL,
    PRIMARY KEY (session_id, name)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS ws_variables_tombstones ON ws_variables (session_id) WHERE value IS NULL;
  CREATE TABLE IF NOT EXISTS ws_runs (
    session_id   TEXT NOT NULL,
    run_id       TEXT NOT NULL,
    step         TEXT NOT NULL,
    status       TEXT NOT NULL,
    started_at   TEXT NOT NULL,
    heartbeat_at INTEGER NOT NULL,
    record       TEXT NOT NULL,
    PRIMARY KEY (session_id, run_id)
  ) WITHOUT ROWID;
  CREATE INDEX IF NOT EXISTS ws_runs_by_session_newest ON ws_runs (session_id, started_at DESC);
`

interface Job extends WriteJob {
  sessionId: string
}

const withRun = (row: RunRow | undefined) => (row ? storedRunOf(row) : undefined)

/**
 * Sessions in one SQLite file (WAL; better-sqlite3 or Node's built-in `node:sqlite`): the
 * embedded default. A session is a head
 * row and one row per variable, so a one-key patch writes two small rows whatever the session's
 * size. Writes that arrive together share one `BEGIN IMMEDIATE` transaction and so one fsync
 * (group commit), each in a savepoint of its own and each acknowledged only after the commit.
 * Several processes may share the file: a writer that finds it locked by another waits
 * (`busyTimeoutMs`). Sessions written by 0.1 (one JSON row each) are migrated on open.
 *
 * @example
 * const store = await sqliteStore('.data/sessions.db')
 */
export async function sqliteStore(path: string, options: SqliteStoreOptions = {}): Promise<SessionStore> {
  if (path !== ':memory:') {
    const [{ mkdir }, nodePath] = await Promise.all([import('node:fs/promises'), import('node:path')])
    await mkdir(nodePath.dirname(path), { recursive: true })
  }
  const db = await openSqlite(path, options.driver)
  db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`)
  busyAsUnavailable(() => {
    // Turning a new file to WAL takes a lock SQLite does not wait for: processes opening one
    // file at once retry it within the busy timeout.
    const timeoutMs = options.busyTimeoutMs ?? 5000
    retryWhileLocked(() => db.exec('PRAGMA journal_mode = WAL'), timeoutMs)
    db.exec(`PRAGMA synchronous = ${options.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`)
    retryWhileLocked(() => db.exec(SCHEMA), timeoutMs)
    for (const [column, statements] of ADDED_COLUMNS) retryWhileLocked(() => addColumnOnce(db, column, statements), timeoutMs)
    migrateFrom01(db)
  })
  const cache = createSessionCache(options.cacheBytes)
  const cutoff = () => (options.ttlMs === undefined ? '' : expiryCutoff(options.ttlMs))

  const selectHead = db.prepare<[string], HeadRow>('SELECT * FROM ws_sessions WHERE id = ?')
  const selectRows = db.prepare<[string, number], VariableRow>('SELECT name, value FROM ws_variables WHERE session_id = ? AND version > ?')
  const upsertHead = db.prepare<[...ReturnType<typeof headColumns>, number, number]>(
    `INSERT INTO ws_sessions (id, user_id, workflow_id, version, created_at, updated_at, bytes, clients, schema_version, compacted_through, tombstones)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (id) DO UPDATE SET user_id = excluded.user_id, workflow_id = excluded.workflow_id, version = excluded.version,
       updated_at = excluded.updated_at, bytes = excluded.bytes, clients = excluded.clients, schema_version = excluded.schema_version,
       compacted_through = excluded.compacted_through, tombstones = excluded.tombstones`,
  )
  const upsertVariable = db.prepare<[string, string, string | null, number]>(
    `INSERT INTO ws_variables (session_id, name, value, version) VALUES (?, ?, ?, ?)
     ON CONFLICT (session_id, name) DO UPDATE SET value = excluded.value, version = excluded.version`,
  )
  const selectRun = db.prepare<[string, string], RunRow>('SELECT * FROM ws_runs WHERE session_id = ? AND run_id = ?')
  const selectRunning = db.prepare<[string], RunRow>("SELECT * FROM ws_runs WHERE session_id = ? AND status = 'running'")
  const selectRuns = db.prepare<[string], RunRow>('SELECT * FROM ws_runs WHERE session_id = ? ORDER BY started_at DESC, run_id DESC')
  const upsertRun = db.prepare<[string, string, string, string, string, number, string]>(
    `INSERT INTO ws_runs (session_id, run_id, step, status, started_at, heartbeat_at, record) VALUES (?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (session_id, run_id) DO UPDATE SET status = excluded.status, heartbeat_at = excluded.heartbeat_at, record = excluded.record`,
  )
  const pruneRuns = db.prepare<[string, string, number]>(
    `DELETE FROM ws_runs WHERE session_id = ? AND status <> 'running' AND run_id NOT IN (
       SELECT run_id FROM ws_runs WHERE session_id = ? AND status <> 'running' ORDER BY started_at DESC, run_id DESC LIMIT ?)`,
  )
  const removeRuns = db.prepare<[string]>('DELETE FROM ws_runs WHERE session_id = ?')
  const purgeRuns = db.prepare<[string]>('DELETE FROM ws_runs WHERE session_id IN (SELECT id FROM ws_sessions WHERE updated_at <= ?)')
  const removeSession = db.prepare<[string]>('DELETE FROM ws_sessions WHERE id = ?')
  const removeVariables = db.prepare<[string]>('DELETE FROM ws_variables WHERE session_id = ?')
  // Through the partial index ws_variables_tombstones: O(tombstones), not O(session).
  const removeTombstones = db.prepare<[string]>('DELETE FROM ws_variables WHERE session_id = ? AND value IS NULL')
  const purgeVariables = db.prepare<[string]>(
    'DELETE FROM ws_variables WHERE session_id IN (SELECT id FROM ws_sessions WHERE updated_at <= ?)',
  )
  const purgeSessions = db.prepare<[string]>('DELETE FROM ws_sessions WHERE updated_at <= ?')
  const listAll = db.prepare<[string, number, number], HeadRow>(
    'SELECT * FROM ws_sessions WHERE updated_at > ? ORDER BY updated_at DESC, id LIMIT ? OFFSET ?',
  )
  const listMine = db.prepare<[string, string, number, number], HeadRow>(
    'SELECT * FROM ws_sessions WHERE user_id = ? AND updated_at > ? ORDER BY updated_at DESC, id LIMIT ? OFFSET ?',
  )
  const idsBatch = db.prepare<[string, string, number], { id: string }>(
    'SELECT id FROM ws_sessions WHERE id > ? AND updated_at > ? ORDER BY id LIMIT ?',
  )

  /** The live session as the database has it now, and its head's compaction columns (inside the caller's transaction). */
  function load(sessionId: string): { stored: StoredSession; compaction: Compaction } | null {
    const row = selectHead.get(sessionId)
    const head = row && headOf(row)
    if (!row || !head || isExpired(head, options.ttlMs)) {
      cache.drop(sessionId)
      if (head) purgeSoon(sessionId)
      return null
    }
    const compaction = compactionOf(row)
    const loadRows = (since: number) => selectRows.all(sessionId, since).filter((variable) => since >= 0 || variable.value !== null)
    return { stored: sessionAt(cache, head, compaction.compactedThrough, loadRows), compaction }
  }
  const readInSnapshot = (sessionId: string) => inTransaction(db, 'BEGIN', () => load(sessionId)?.stored ?? null)

  /** One job inside the shared transaction, in a savepoint: its failure undoes only its own writes. */
  function run(job: Job): void {
    db.exec('SAVEPOINT job')
    try {
      const loaded = load(job.sessionId)
      const stored = loaded?.stored ?? null
      const runs: CurrentRuns =
        job.runId === undefined || !stored
          ? { run: undefined, running: [] }
          : {
              run: withRun(selectRun.get(job.sessionId, job.runId)),
              running: selectRunning.all(job.sessionId).map(storedRunOf),
            }
      const write = job.decide(currentOf(stored), runs)
      let after = stored
      if (write?.head === null) {
        removeVariables.run(job.sessionId)
        removeRuns.run(job.sessionId)
        removeSession.run(job.sessionId)
        after = afterWrite(cache, job.sessionId, stored, write)
      } else if (write?.head) {
        // An expired session's rows go first: the new one starts afresh.
        if (!stored && selectHead.get(job.sessionId)) {
          removeVariables.run(job.sessionId)
          removeRuns.run(job.sessionId)
          removeSession.run(job.sessionId)
        }
        const deletes = write.deletes ?? []
        const compaction = nextCompaction(loaded?.compaction ?? null, write.head.version, deletes.length)
        upsertHead.run(...headColumns(write.head), compaction.compactedThrough, compaction.tombstones)
        for (const [name, json] of write.sets ?? []) upsertVariable.run(job.sessionId, name, json, write.head.version)
        for (const name of deletes) upsertVariable.run(job.sessionId, name, null, write.head.version)
        if (compaction.compact) removeTombstones.run(job.sessionId)
        after = afterWrite(cache, job.sessionId, stored, write)
      }
      if (write?.runs && after) {
        for (const run of write.runs)
          upsertRun.run(job.sessionId, run.runId, run.step, run.status, run.startedAt, run.heartbeatAt, run.record)
        pruneRuns.run(job.sessionId, job.sessionId, MAX_FINISHED_RUNS)
      }
      job.result = job.view(after)
      db.exec('RELEASE job')
    } catch (error) {
      db.exec('ROLLBACK TO job')
      db.exec('RELEASE job')
      cache.drop(job.sessionId)
      job.error = error
    }
  }

  // Group commit: the writes queued while the event loop was busy go out in one transaction.
  let queue: Job[] = []
  const enqueue = (job: Job) => {
    if (queue.length === 0) setImmediate(commitQueued)
    queue.push(job)
  }
  /** Removes an expired session's rows (found on a read), unless it is live again by then. */
  function purgeSoon(sessionId: string): void {
    if (!db.isOpen) return
    enqueue({
      sessionId,
      decide: (current) => (current ? undefined : { head: null }),
      view: () => null,
      resolve: () => {},
      reject: () => {},
    })
  }
  function commitQueued(): void {
    const jobs = queue
    queue = []
    try {
      busyAsUnavailable(() => db.exec('BEGIN IMMEDIATE'))
    } catch (error) {
      for (const job of jobs) job.reject(error)
      return
    }
    for (const job of jobs) run(job)
    try {
      db.exec('COMMIT')
    } catch (error) {
      if (db.inTransaction) db.exec('ROLLBACK')
      cache.clear()
      for (const job of jobs) job.reject(error)
      return
    }
    for (const job of jobs) {
      if (job.error === undefined) job.resolve(job.result)
      else job.reject(job.error)
    }
  }

  return defineStore(
    {
      read: async (sessionId, use) => use(busyAsUnavailable(() => readInSnapshot(sessionId))),
      update: (sessionId, _names, decide, view, runId) =>
        new Promise((resolve, reject) => {
          if (!db.isOpen) {
            reject(new Error('The session store is closed'))
            return
          }
          enqueue({ sessionId, decide, view, runId, resolve: resolve as (value: unknown) => void, reject })
        }),
      async runs(sessionId, runId) {
        const rows = busyAsUnavailable(() =>
          inTransaction(db, 'BEGIN', () => {
            if (!load(sessionId)) return []
            return runId === undefined ? selectRuns.all(sessionId) : [selectRun.get(sessionId, runId)].filter((row) => row !== undefined)
          }),
        )
        return rows.map(storedRunOf)
      },
      async list({ userId, limit, offset }) {
        const rows = userId === undefined ? listAll.all(cutoff(), limit, offset) : listMine.all(userId, cutoff(), limit, offset)
        return rows.map((row) => summaryOf(headOf(row)))
      },
      async *ids() {
        // In batches by id, so a long walk neither holds a read transaction nor loads every id at once.
        for (let after = ''; ;) {
          const rows = idsBatch.all(after, cutoff(), 500)
          for (const row of rows) yield row.id
          if (rows.length < 500) return
          after = rows[rows.length - 1]!.id
        }
      },
      async purgeExpired() {
        if (options.ttlMs === undefined) return 0
        const at = cutoff()
        return busyAsUnavailable(() =>
          inTransaction(db, 'BEGIN IMMEDIATE', () => (purgeVariables.run(at), purgeRuns.run(at), Number(purgeSessions.run(at).changes))),
        )
      },
      async close() {
        if (queue.length > 0) await new Promise((resolve) => setImmediate(resolve))
        if (db.isOpen) db.close()
      },
    },
    options,
  )
}

/**
 * Columns the head gained after tables were made, each added once to an older table, in one
 * transaction with what goes with it (the Python store does the same; whichever opens the file
 * first adds them): the compaction columns and each session's count of the tombstones it has;
 * `schema_version` (0, read as 1).
 */
const ADDED_COLUMNS: Array<[column: string, statements: string]> = [
  [
    'compacted_through',
    `ALTER TABLE ws_sessions ADD COLUMN compacted_through INTEGER NOT NULL DEFAULT 0;
     ALTER TABLE ws_sessions ADD COLUMN tombstones INTEGER NOT NULL DEFAULT 0;
     UPDATE ws_sessions SET tombstones = (SELECT count(*) FROM ws_variables WHERE session_id = ws_sessions.id AND value IS NULL)
       WHERE id IN (SELECT session_id FROM ws_variables WHERE value IS NULL);`,
  ],
  ['schema_version', 'ALTER TABLE ws_sessions ADD COLUMN schema_version INTEGER NOT NULL DEFAULT 0'],
]

function addColumnOnce(db: SqliteDatabase, column: string, statements: string): void {
  const added = db.prepare<[string], { name: string }>("SELECT name FROM pragma_table_info('ws_sessions') WHERE name = ?")
  if (added.get(column)) return
  inTransaction(db, 'BEGIN IMMEDIATE', () => {
    if (!added.get(column)) db.exec(statements)
  })
}

/** Sessions of 0.1 (`sessions`: one JSON `record` per session) move to the head and variable rows, in one transaction. */
function migrateFrom01(db: SqliteDatabase): void {
  const old = db.prepare<[], { name: string }>("SELECT name FROM pragma_table_info('sessions') WHERE name = 'record'").get()
  if (!old) return
  const insertHead = db.prepare<ReturnType<typeof headColumns>>(
    'INSERT OR REPLACE INTO ws_sessions (id, user_id, workflow_id, version, created_at, updated_at, bytes, clients, schema_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
  )
  const insertVariable = db.prepare<[string, string, string, number]>(
    'INSERT OR REPLACE INTO ws_variables (session_id, name, value, version) VALUES (?, ?, ?, ?)',
  )
  const rows = db.prepare<[], { record: string }>('SELECT record FROM sessions')
  inTransaction(db, 'BEGIN IMMEDIATE', () => {
    for (const { record } of rows.all()) {
      const { head, entries } = fromSnapshotRecord(JSON.parse(record) as Parameters<typeof fromSnapshotRecord>[0])
      insertHead.run(...headColumns(head))
      for (const [name, entry] of entries)
        insertVariable.run(head.sessionId, name, entry.slice(JSON.stringify(name).length + 1), head.version)
    }
    db.exec('DROP TABLE sessions')
  })
}

/** Runs `work`, again every 20 ms while the file is locked, for at most `timeoutMs` (only while the store opens). */
function retryWhileLocked(work: () => unknown, timeoutMs: number): void {
  const until = Date.now() + timeoutMs
  for (;;) {
    try {
      work()
      return
    } catch (error) {
      if (!isBusy(error) || Date.now() > until) throw error
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20)
    }
  }
}

/** Runs `work`; a database still locked by another process after the busy timeout is `unavailable` (503, retried). */
function busyAsUnavailable<T>(work: () => T): T {
  try {
    return work()
  } catch (error) {
    if (isBusy(error)) {
      throw new SessionProtocolError('unavailable', 'The session database is busy with another process; try again')
    }
    throw error
  }
}
