/**
 * The two SQLite bindings the SQLite store runs on, behind the few calls it makes: better-sqlite3
 * (a package with its binaries inside) and Node's built-in `node:sqlite` (Node 22.16+, 24, 26: no
 * package, nothing to compile). Both are synchronous and bind `?` parameters the same way;
 * they differ in how a transaction, a closed database and a locked file show, which is what this
 * file hides.
 */

import { importDriver } from './import-driver.js'

/** Which binding: `better-sqlite3` (used when installed) or Node's built-in `node:sqlite`. */
export type SqliteDriverName = 'better-sqlite3' | 'node:sqlite'

type SqliteParameter = string | number | bigint | null

interface SqliteStatement<Params extends readonly SqliteParameter[], Row> {
  get(...params: Params): Row | undefined
  all(...params: Params): Row[]
  run(...params: Params): { changes: number | bigint }
}

/** An open database: the calls the store makes, the same on both bindings. */
export interface SqliteDatabase {
  readonly driver: SqliteDriverName
  exec(sql: string): void
  prepare<Params extends readonly SqliteParameter[] = [], Row = unknown>(sql: string): SqliteStatement<Params, Row>
  readonly isOpen: boolean
  readonly inTransaction: boolean
  close(): void
}

/**
 * Opens `path` with the named binding, or, unnamed, with better-sqlite3 when the app has it
 * installed and `node:sqlite` otherwise.
 */
export async function openSqlite(path: string, driver?: SqliteDriverName): Promise<SqliteDatabase> {
  if (driver === 'node:sqlite') return openNodeSqlite(path)
  const betterSqlite = await importBetterSqlite(driver === 'better-sqlite3')
  if (betterSqlite) return openBetterSqlite(betterSqlite, path)
  return openNodeSqlite(path)
}

/** A write that found the file locked by another process past the busy timeout (`SQLITE_BUSY*`). */
export function isBusy(error: unknown): boolean {
  const { code, errcode } = (error ?? {}) as { code?: unknown; errcode?: unknown }
  // better-sqlite3 names the code; node:sqlite gives the number (5, or an extended 5 + n·256).
  return (typeof code === 'string' && code.startsWith('SQLITE_BUSY')) || (typeof errcode === 'number' && (errcode & 0xff) === 5)
}

/** Runs `work` in a transaction begun with `begin` (`BEGIN` or `BEGIN IMMEDIATE`): committed, or rolled back if it throws. */
export function inTransaction<T>(db: SqliteDatabase, begin: 'BEGIN' | 'BEGIN IMMEDIATE', work: () => T): T {
  db.exec(begin)
  try {
    const result = work()
    db.exec('COMMIT')
    return result
  } catch (error) {
    if (db.inTransaction) db.exec('ROLLBACK')
    throw error
  }
}

type BetterSqliteModule = typeof import('better-sqlite3')

async function importBetterSqlite(required: boolean): Promise<BetterSqliteModule | null> {
  try {
    return (await importDriver<BetterSqliteModule>('better-sqlite3')).default
  } catch (error) {
    if (required || !isNotInstalled(error)) {
      throw new Error(
        `sqliteStore: cannot load better-sqlite3 (${(error as Error).message}); npm install better-sqlite3, or leave it out to use node:sqlite`,
        { cause: error },
      )
    }
    return null
  }
}

function isNotInstalled(error: unknown): boolean {
  const code = (error as { code?: unknown }).code
  return code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND'
}

function openBetterSqlite(Database: BetterSqliteModule, path: string): SqliteDatabase {
  const db = new Database(path)
  return {
    driver: 'better-sqlite3',
    exec: (sql) => void db.exec(sql),
    prepare: <Params extends readonly SqliteParameter[], Row>(sql: string) => db.prepare(sql) as unknown as SqliteStatement<Params, Row>,
    get isOpen() {
      return db.open
    },
    get inTransaction() {
      return db.inTransaction
    },
    close: () => db.close(),
  }
}

async function openNodeSqlite(path: string): Promise<SqliteDatabase> {
  const { default: sqlite } = await importDriver<typeof import('node:sqlite')>('node:sqlite').catch((error: unknown) => {
    throw new Error(
      `sqliteStore: neither better-sqlite3 nor node:sqlite is available (${(error as Error).message}). ` +
        'node:sqlite is built into Node 22.16+, 24 and 26; on an older Node, npm install better-sqlite3',
    )
  })
  const db = new sqlite.DatabaseSync(path)
  return {
    driver: 'node:sqlite',
    exec: (sql) => db.exec(sql),
    prepare: <Params extends readonly SqliteParameter[], Row>(sql: string) => db.prepare(sql) as unknown as SqliteStatement<Params, Row>,
    get isOpen() {
      return db.isOpen
    },
    get inTransaction() {
      return db.isTransaction
    },
    close: () => db.close(),
  }
}
