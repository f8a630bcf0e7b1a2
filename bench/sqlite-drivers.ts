// The SQLite store on its two bindings, better-sqlite3 and Node's built-in node:sqlite, on the
// group-commit path: many clients, each with one patch in flight, so the writes that arrive
// together share one transaction and one fsync. In this process, without HTTP, so that the
// binding is what differs; the two take turns round by round, and each row is the median round.
// The floor: the same patches as bare upserts in one transaction per patch batch, straight on
// better-sqlite3 (no store, no seq, no version, no cache).
// Alone: `npx tsx bench/sqlite-drivers.ts`.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import type { SqliteDriverName } from '../src/server/stores/sqlite-driver.js'

export interface DriverRow {
  driver: string
  patchesPerSecond: number
  p50: number
  p99: number
}

const CLIENTS = 64
const PATCHES_PER_CLIENT = 200
const ROUNDS = 5

async function oneRound(place: string, driver: SqliteDriverName, round: number): Promise<{ seconds: number; latencies: number[] }> {
  // npm run bench measures the built package (WS_BENCH_DIST), as production runs it.
  const { sqliteStore } = (await import(
    process.env.WS_BENCH_DIST ? '../dist/server/index.js' : '../src/server/index.js'
  )) as typeof import('../src/server/index.js')
  const store = await sqliteStore(join(place, `${driver.replace(':', '-')}-${round}.db`), { driver })
  const measured = await drive((client, seq) =>
    store.apply(`bench-session-${client}`, { variables: { field: `value ${seq}` }, clientId: `client-${client}`, seq }),
  )
  await store.close()
  return measured
}

/** The clients, each writing its patches one after the other (`write(client, seq)`), all at once: the time and every write's latency. */
async function drive(write: (client: number, seq: number) => Promise<unknown>): Promise<{ seconds: number; latencies: number[] }> {
  const latencies: number[] = []
  const started = performance.now()
  await Promise.all(
    Array.from({ length: CLIENTS }, async (_, client) => {
      for (let seq = 1; seq <= PATCHES_PER_CLIENT; seq++) {
        const sent = performance.now()
        await write(client, seq)
        latencies.push(performance.now() - sent)
      }
    }),
  )
  return { seconds: (performance.now() - started) / 1000, latencies }
}

/** The same writes with no store around them: one upsert per patch, one transaction per tick's batch. */
async function floorRound(place: string, round: number): Promise<{ seconds: number; latencies: number[] }> {
  const { default: Database } = await import('better-sqlite3')
  const db = new Database(join(place, `floor-${round}.db`))
  db.pragma('journal_mode = WAL')
  db.pragma('synchronous = FULL')
  db.exec('CREATE TABLE variables (session_id TEXT, name TEXT, value TEXT, PRIMARY KEY (session_id, name)) WITHOUT ROWID')
  const upsert = db.prepare('INSERT INTO variables VALUES (?, ?, ?) ON CONFLICT DO UPDATE SET value = excluded.value')
  let queue: Array<{ args: [string, string, string]; done: () => void }> = []
  const commit = db.transaction((batch: typeof queue) => batch.forEach((job) => upsert.run(...job.args)))
  const write = (args: [string, string, string]) =>
    new Promise<void>((done) => {
      if (queue.length === 0)
        setImmediate(() => {
          const batch = queue
          queue = []
          commit(batch)
          batch.forEach((job) => job.done())
        })
      queue.push({ args, done })
    })
  const measured = await drive((client, seq) => write([`bench-session-${client}`, 'field', JSON.stringify(`value ${seq}`)]))
  db.close()
  return measured
}

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!

export async function measureSqliteDrivers(): Promise<DriverRow[]> {
  const place = await mkdtemp(join(tmpdir(), 'ws-sqlite-drivers-'))
  const runs: Record<string, Array<{ seconds: number; latencies: number[] }>> = { 'better-sqlite3': [], 'node:sqlite': [], floor: [] }
  try {
    for (let round = 0; round <= ROUNDS; round++) {
      const results = {
        'better-sqlite3': await oneRound(place, 'better-sqlite3', round),
        'node:sqlite': await oneRound(place, 'node:sqlite', round),
        floor: await floorRound(place, round),
      }
      if (round === 0) continue // warm-up
      for (const [name, result] of Object.entries(results)) runs[name]!.push(result)
    }
  } finally {
    await rm(place, { recursive: true, force: true })
  }
  return Object.entries(runs).map(([name, rounds]) => {
    const median = [...rounds].sort((a, b) => a.seconds - b.seconds)[Math.floor(rounds.length / 2)]!
    const sorted = [...median.latencies].sort((a, b) => a - b)
    return {
      driver: name === 'floor' ? 'bare upserts on better-sqlite3 (the floor)' : `sqliteStore, ${name}`,
      patchesPerSecond: (CLIENTS * PATCHES_PER_CLIENT) / median.seconds,
      p50: percentile(sorted, 50),
      p99: percentile(sorted, 99),
    }
  })
}

export function sqliteDriversTable(rows: DriverRow[]): string {
  const floor = rows.at(-1)!
  const better = rows[0]!
  return `## SQLite store: better-sqlite3 against node:sqlite on the group-commit path

${CLIENTS} clients, each with one patch in flight, ${PATCHES_PER_CLIENT} one-key patches each (clientId and
seq, synchronous = FULL, WAL), in one process without HTTP; the bindings take turns for ${ROUNDS} rounds
(after one not counted) and each row is its median round. The floor writes the same values as bare
upserts, batched per tick in one transaction, with no store around them.

| binding | patches/s | p50 ms | p99 ms | time per patch vs better-sqlite3 | vs the floor |
|---|---|---|---|---|---|
${rows.map((r) => `| ${r.driver} | ${r.patchesPerSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${(better.patchesPerSecond / r.patchesPerSecond).toFixed(2)}× | ${(floor.patchesPerSecond / r.patchesPerSecond).toFixed(2)}× |`).join('\n')}
`
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  console.log(sqliteDriversTable(await measureSqliteDrivers()))
}
