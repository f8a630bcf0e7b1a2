// npm run bench: every scenario, for this package and, side by side, the alternatives a user
// would reach for. Prints the tables and writes bench/RESULTS.md with the machine's facts.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { measureHydration } from './hydration.js'
import type { KeystrokeRow } from './keystrokes.bench.js'
import { measureMigrations, migrationsTable } from './migrations.js'
import { readResult } from './results.js'
import { measureRuns, runsTable } from './runs.js'
import { measure, measureSessionSize, type SizeRow, type ThroughputRow, throughputTable } from './server.js'
import { hasWrk, hotSession, measureAgainstFloor, postgresWalPerPatch, sqliteBytesPerPatch, type WrkRow } from './server-cost.js'
import { BEFORE, BUDGETS, entrySizes, kB, sizeOfModule } from './size.js'
import { measureSqliteDrivers, sqliteDriversTable } from './sqlite-drivers.js'
import { measureWire, wireTable } from './wire.js'

const sections: string[] = []
const say = (text: string) => {
  console.log(text)
  sections.push(text)
}
const ratio = (ours: number, theirs: number) => (ours === 0 ? (theirs === 0 ? '—' : '∞ better') : `${(theirs / ours).toFixed(1)}×`)

// 1. Keystrokes (jsdom, fake timers: counts do not depend on the machine).
const run = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'bench/vitest.config.ts'], {
  stdio: 'inherit',
})
if (run.status !== 0) throw new Error('the keystroke benchmark failed')
const keys = await readResult<KeystrokeRow[]>('keystrokes')
const ours = keys[0]!
say(`## 500 keystrokes across 5 of 50 fields over 10 s

Each component reads one field; fake timers, so the counts are exact. "Requests" counts every
request (the optimistic recipe refetches after each mutation); "storage writes" are IndexedDB
transactions (localStorage writes for use-local-storage-state). Latency: a setter call to the
committed render, in jsdom on this machine.

| library | POSTs | requests | bytes sent | storage writes | renders of non-readers | latency p50 / p99 ms | bytes vs ours |
|---|---|---|---|---|---|---|---|
${keys.map((r) => `| ${r.library} | ${r.posts} | ${r.requests} | ${r.bytesSent} | ${r.storageWrites} | ${r.nonReaderRenders} | ${r.p50.toFixed(2)} / ${r.p99.toFixed(2)} | ${r === ours ? '1×' : r.bytesSent === 0 ? 'no server' : ratio(ours.bytesSent, r.bytesSent)} |`).join('\n')}

Before the client rework (bench/before.json), latency p50 / p99: workflow-session ${BEFORE.keystrokeLatencyMs['workflow-session']!.p50} / ${BEFORE.keystrokeLatencyMs['workflow-session']!.p99} ms, zustand ${BEFORE.keystrokeLatencyMs.zustand!.p50} / ${BEFORE.keystrokeLatencyMs.zustand!.p99} ms in the same run. The p99 of 500 setter calls in jsdom moves by ±1 ms from run to run.
`)

// 2. Hydration in Chromium.
const hydration = await measureHydration()
// The floor: the simplest persisted store, zustand + persist on idb-keyval.
const hydrationFloor = hydration.rows.at(-1)!
say(`## Hydration: 1,000 variables in IndexedDB (Chromium ${hydration.chromium})

Time from mount to the first render that shows the cached values; median of 11 loads, the
libraries taking turns load by load (after two rounds not counted). The common reload has
nothing pending; the second row takes over 1,000 changes a closed page left unsent.

| library | median ms | min–max ms | time vs zustand + persist (the floor) |
|---|---|---|---|
${hydration.rows.map((r) => `| ${r.library} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)}–${r.maxMs.toFixed(1)} | ${r === hydrationFloor ? '1× (floor)' : `${(r.medianMs / hydrationFloor.medianMs).toFixed(2)}×`} |`).join('\n')}

Before the client rework (bench/before.json; one record per page, base included, read at
start(); 7 loads per library, one library after the other): workflow-session ${BEFORE.hydrationMs['workflow-session']} ms, zustand + persist
${BEFORE.hydrationMs.zustand} ms (${(BEFORE.hydrationMs['workflow-session']! / BEFORE.hydrationMs.zustand!).toFixed(2)}×).
`)

// The server processes run the built package, as production does (no TypeScript loader).
execFileSync('npm', ['run', 'build'], { stdio: 'ignore' })
process.env.WS_BENCH_DIST = '1'

// 3. The server: side by side with the floor (wrk), cost against session size, bytes written
// per patch, one hot session, and every store under concurrent clients.
const place = await mkdtemp(join(tmpdir(), 'ws-bench-'))
const databaseUrl = process.env.DATABASE_URL
const seconds = Number(process.env.SECONDS ?? 5)
if (hasWrk()) {
  const floorRows = await measureAgainstFloor(seconds, [32, 64])
  const floorOf = (row: WrkRow) => floorRows.find((other) => other.connections === row.connections && other.target.startsWith('bare'))!
  say(`## Server: one-key patches against the floor (wrk, ${seconds} s, 200 sessions)

\`wrk -t1 -cN\` posts one-key patches (with clientId and seq) over 200 sessions. The floor is a bare
\`node:http\` endpoint that parses the body, merges it into a Map and answers the snapshot, with no
checks, no seq and no store (bench/floor-server.ts). Each server is a process of its own.

| server | connections | patches/s | p50 ms | p99 ms | the floor's time per patch vs ours |
|---|---|---|---|---|---|
${floorRows.map((r) => `| ${r.target} | ${r.connections} | ${r.requestsPerSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.target.startsWith('bare') ? '1× (floor)' : `${(floorOf(r).requestsPerSecond / r.requestsPerSecond).toFixed(2)}×`} |`).join('\n')}
`)
} else say('## Server against the floor\n\nSkipped: wrk is not installed (Debian: `apt-get install wrk`).\n')

const stores: Array<[string, string]> = [
  ['memory:', 'memory'],
  [`file:${join(place, 'files')}`, 'file'],
  [`sqlite:${join(place, 'sessions.db')}`, 'sqlite'],
  ...(databaseUrl ? ([[databaseUrl, 'postgres']] as Array<[string, string]>) : []),
]
const sizes: SizeRow[] = []
for (const [url, label] of stores.filter(([, label]) => label !== 'file'))
  for (const deltas of [false, true])
    for (const variables of [10, 1000, 10000]) sizes.push(await measureSessionSize(url, label, variables, deltas))
const smallest = (row: SizeRow) =>
  sizes.find((other) => other.store === row.store && other.deltas === row.deltas && other.variables === 10)!
say(`## Server: cost of a one-key patch against session size (1 client)

A client that states no base gets the whole session back (every client before deltas); one that
states the version it holds (\`Session-Base\`) gets the delta. Goal with deltas: 10,000 variables
within 1.3× of 10.

| store | answer | variables in the session | patches/s | p50 ms | p99 ms | p50 vs 10 variables |
|---|---|---|---|---|---|---|
${sizes.map((r) => `| ${r.store} | ${r.deltas ? 'delta' : 'whole'} | ${r.variables} | ${r.patchesPerSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${(r.p50 / smallest(r).p50).toFixed(2)}× |`).join('\n')}
`)
say(wireTable(await measureWire()))

const sqliteWal = await sqliteBytesPerPatch()
const postgresWal = databaseUrl ? await postgresWalPerPatch(databaseUrl) : undefined
say(`## Server: bytes written to the database by a one-key patch on a 1 MiB session

| store | written | before (0.1: the whole session row) |
|---|---|---|
| SQLite (WAL frames, 4 KiB pages) | ${sqliteWal.pages} pages, ${sqliteWal.bytes} bytes | the 1 MiB row and its pages |
| PostgreSQL (WAL, \`pg_current_wal_lsn()\`, between two checkpoints) | ${postgresWal === undefined ? 'not measured (no DATABASE_URL)' : `${postgresWal} bytes`} | the 1 MiB row |
`)

say(sqliteDriversTable(await measureSqliteDrivers()))

const throughput: ThroughputRow[] = []
for (const [url, label] of stores) throughput.push(await measure(url, label, 64, seconds))
if (databaseUrl) throughput.push(await measure(databaseUrl, 'postgres, 2 servers', 64, seconds, 2))
const hot = databaseUrl ? await hotSession(databaseUrl) : undefined
await rm(place, { recursive: true, force: true })
say(`## Server: every store under 64 clients (each its own session, one patch in flight)

${throughputTable(throughput)}

One hot session: 64 clients × 50 patches on one session through two server processes on
PostgreSQL: ${hot ? `${hot.patchesPerSecond.toFixed(0)} patches/s, version ${hot.version} of ${hot.expected} expected` : 'not measured (no DATABASE_URL)'}.
`)

// 4. Bundle sizes (peers external), and what the alternatives weigh.
say(runsTable(await measureRuns()))

// Schema migrations: an old session's first read, later reads, against a current one; an old local copy.
say(migrationsTable(await measureMigrations(databaseUrl)))

const entries = await entrySizes()
const peers = ['react', 'react-dom', 'react/jsx-runtime']
const alternatives = [
  [
    'zustand + persist + idb-keyval',
    "export { create } from 'zustand'; export { persist, createJSONStorage } from 'zustand/middleware'; export { get, set } from 'idb-keyval'",
  ],
  ['use-local-storage-state', "export { default } from 'use-local-storage-state'"],
  [
    '@tanstack/react-query (the optimistic recipe)',
    "export { QueryClient, QueryClientProvider, useQuery, useMutation } from '@tanstack/react-query'",
  ],
] as const
const alternativeSizes = await Promise.all(alternatives.map(async ([name, code]) => [name, await sizeOfModule(code, peers)] as const))
say(`## Bundle size (minified; brotli / gzip)

Apps keep only what they import. "First chunk" is what an app loads at once when its bundler
splits code (esbuild's splitting; each file compressed on its own): the devtools panel and
lit-html load on demand, when it is first to show.

| entry | own code (budget) | own code before the client rework, brotli | with the card's dependencies (TanStack Query, use-debounce, idb-keyval; lit-html for the devtools) |
|---|---|---|---|
${entries.map((r) => `| \`${r.entry}\` | ${kB(r.own.brotli)} / ${kB(r.own.gzip)} (${BUDGETS[r.entry]} kB) | ${BEFORE.sizeBrotliKB[r.entry]?.toFixed(2) ?? '—'} kB | ${kB(r.withDependencies.brotli)} / ${kB(r.withDependencies.gzip)} |`).join('\n')}

| alternative (peers external) | brotli / gzip |
|---|---|
${alternativeSizes.map(([name, size]) => `| ${name} | ${kB(size.brotli)} / ${kB(size.gzip)} |`).join('\n')}
`)

const version = (command: string, args: string[]) => {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim().split('\n')[0]
  } catch {
    return 'not found'
  }
}
const header = `# Benchmark results

Made by \`npm run bench\` on ${new Date().toISOString().slice(0, 10)}: ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB,
Node ${process.version}, Chromium ${hydration.chromium}, ${process.env.DATABASE_URL ? version('psql', ['--version']) : 'no PostgreSQL'}.
Timings are of this machine; counts are exact. Reproduce: \`npm run bench\` (\`DATABASE_URL=postgres://… npm run bench\` adds PostgreSQL).
`
await writeFile(new URL('./RESULTS.md', import.meta.url), `${header}\n${sections.join('\n')}`)
console.log('\nwritten to bench/RESULTS.md')
