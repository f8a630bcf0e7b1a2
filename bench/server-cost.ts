// What a patch costs the server, side by side with the floor: a bare Node endpoint
// (bench/floor-server.ts) and this package's serve() + handler, each in a process of its own,
// driven by wrk (a load generator in C that is not the bottleneck). Also: how the cost grows with
// the session, the bytes a one-key patch writes to the database, and one hot session on two
// PostgreSQL servers.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { startServerProcess } from './server.js'

const here = (file: string) => fileURLToPath(new URL(file, import.meta.url))

export interface WrkRow {
  target: string
  connections: number
  requestsPerSecond: number
  p50: number
  p99: number
  errors: number
}

/** Whether wrk is installed (Debian: `apt-get install wrk`). */
export function hasWrk(): boolean {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' })
    return true
  } catch (error) {
    // wrk --version exits 1 after printing its version.
    return (error as { status?: number }).status === 1
  }
}

function startProcess(script: string, args: string[]): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)))
    child.stdout.once('data', (chunk: Buffer) => {
      child.removeAllListeners('exit')
      resolve({ url: chunk.toString().trim(), child })
    })
  })
}

const ms = (text: string) =>
  text.endsWith('us') ? Number.parseFloat(text) / 1000 : text.endsWith('ms') ? Number.parseFloat(text) : Number.parseFloat(text) * 1000

/** wrk against `url` with one-key patches over 200 sessions (bench/wrk-patch.lua). */
function wrk(url: string, target: string, connections: number, seconds: number): WrkRow {
  const output = execFileSync('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-s', here('./wrk-patch.lua'), url], {
    encoding: 'utf8',
  })
  const percentile = (p: string) => ms(new RegExp(`^\\s+${p}%\\s+(\\S+)`, 'm').exec(output)?.[1] ?? 'NaN')
  return {
    target,
    connections,
    requestsPerSecond: Number(/Requests\/sec:\s+([\d.]+)/.exec(output)?.[1] ?? NaN),
    p50: percentile('50'),
    p99: percentile('99'),
    errors: Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0) + Number(/Socket errors: .*?(\d+)/.exec(output)?.[1] ?? 0),
  }
}

/** The floor and this package over memory and SQLite, the same load on each, one after the other. */
export async function measureAgainstFloor(seconds: number, connections: number[]): Promise<WrkRow[]> {
  const place = await mkdtemp(join(tmpdir(), 'ws-floor-'))
  const targets: Array<[string, string, string[]]> = [
    ['bare Node (the floor)', here('./floor-server.ts'), []],
    ['serve() + handler, memory', here('./serve-store.ts'), ['memory:']],
    ['serve() + handler, SQLite (FULL sync)', here('./serve-store.ts'), [`sqlite:${join(place, 'sessions.db')}`]],
  ]
  const rows: WrkRow[] = []
  for (const clients of connections) {
    for (const [label, script, args] of targets) {
      const { url, child } = await startProcess(script, args)
      wrk(url, label, clients, 1) // warm up
      rows.push(wrk(url, label, clients, seconds))
      await new Promise((resolve) => (child.once('exit', resolve), child.kill('SIGTERM')))
    }
  }
  await rm(place, { recursive: true, force: true })
  return rows
}

/** Bytes a one-key patch writes to SQLite's WAL on a session of about 1 MiB. */
export async function sqliteBytesPerPatch(): Promise<{ pages: number; bytes: number }> {
  const { sqliteStore } = await import('../src/server/index.js')
  const { default: Database } = await import('better-sqlite3')
  const place = await mkdtemp(join(tmpdir(), 'ws-wal-'))
  const path = join(place, 'sessions.db')
  const store = await sqliteStore(path)
  await fillOneMebibyte(store)
  // Empty the WAL, make one patch, and see what it wrote.
  new Database(path).pragma('wal_checkpoint(TRUNCATE)')
  await store.apply('mebibyte-session', { variables: { v42: 'one key changed' } })
  const bytes = (await stat(`${path}-wal`)).size
  await store.close()
  await rm(place, { recursive: true, force: true })
  const frame = 4096 + 24
  return { pages: Math.round((bytes - 32) / frame), bytes }
}

/** WAL bytes PostgreSQL writes for a one-key patch on a session of about 1 MiB. */
export async function postgresWalPerPatch(url: string): Promise<number> {
  const { postgresStore } = await import('../src/server/index.js')
  const { default: pg } = await import('pg')
  const table = `ws_bench_${process.pid}`
  const store = await postgresStore(url, { table })
  await fillOneMebibyte(store)
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  // After a checkpoint the first change of a page writes the page whole (full_page_writes): change
  // the key once first, then measure the next change, as typing does between two checkpoints.
  await store.apply('mebibyte-session', { variables: { v42: 'warm its pages' } })
  const before = (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!.lsn
  await store.apply('mebibyte-session', { variables: { v42: 'one key changed' } })
  const after = (await admin.query<{ lsn: string }>('SELECT pg_current_wal_lsn() AS lsn')).rows[0]!.lsn
  const { rows } = await admin.query<{ bytes: string }>('SELECT pg_wal_lsn_diff($1, $2) AS bytes', [after, before])
  await store.close()
  await admin.query(`DROP TABLE IF EXISTS ${table}, ${table}_variables`)
  await admin.end()
  return Number(rows[0]!.bytes)
}

async function fillOneMebibyte(store: import('../src/server/index.js').SessionStore): Promise<void> {
  // 1,000 variables of ~1 KiB: about 1 MiB of JSON.
  const value = 'x'.repeat(1000)
  for (let start = 0; start < 1000; start += 100) {
    await store.apply(
      'mebibyte-session',
      { variables: Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`v${start + i}`, value])) },
      { maxBytes: 2 * 1024 * 1024 },
    )
  }
}

/** 64 clients × 50 patches on one session, through two server processes on one PostgreSQL database. */
export async function hotSession(url: string): Promise<{ patchesPerSecond: number; version: number; expected: number }> {
  const servers = [await startServerProcess(url), await startServerProcess(url)]
  const sessionId = `hot-session-${process.pid}-${Date.now()}`
  const clients = 64
  const perClient = 50
  const started = performance.now()
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      const server = servers[client % 2]!
      for (let seq = 1; seq <= perClient; seq++) {
        const response = await fetch(`${server.url}/api/session/${sessionId}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ variables: { [`c${client}`]: seq }, clientId: `hot-${client}`, seq }),
        })
        await response.arrayBuffer()
        if (!response.ok) throw new Error(`hot session: ${response.status}`)
      }
    }),
  )
  const seconds = (performance.now() - started) / 1000
  const snapshot = (await (await fetch(`${servers[0]!.url}/api/session/${sessionId}`)).json()) as { version: number }
  await Promise.all(servers.map((server) => server.close()))
  return { patchesPerSecond: (clients * perClient) / seconds, version: snapshot.version, expected: clients * perClient }
}
