// npm run bench: every scenario, for this package and, side by side, the alternatives a user
// would reach for. Prints the tables and writes bench/RESULTS.md with the machine's facts.
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { cpus, tmpdir, totalmem } from 'node:os'
import { join } from 'node:path'
import { measureHydration } from './hydration.js'
import type { KeystrokeRow } from './keystrokes.bench.js'
import { readResult } from './results.js'
import { measure, measureSessionSize, throughputTable, type SizeRow, type ThroughputRow } from './server.js'
import { BUDGETS, entrySizes, kB, sizeOfModule } from './size.js'

const sections: string[] = []
const say = (text: string) => {
  console.log(text)
  sections.push(text)
}
const ratio = (ours: number, theirs: number) => (ours === 0 ? (theirs === 0 ? '—' : '∞ better') : `${(theirs / ours).toFixed(1)}×`)

// 1. Keystrokes (jsdom, fake timers: counts do not depend on the machine).
const run = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', '--config', 'bench/vitest.config.ts'], { stdio: 'inherit' })
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
`)

// 2. Hydration in Chromium.
const hydration = await measureHydration()
const oursHydration = hydration.rows[0]!
say(`## Hydration: 1,000 variables in IndexedDB (Chromium ${hydration.chromium})

Time from mount to the first render that shows the cached values; median of 7 loads.

| library | median ms | min–max ms | vs ours |
|---|---|---|---|
${hydration.rows.map((r) => `| ${r.library} | ${r.medianMs.toFixed(1)} | ${r.minMs.toFixed(1)}–${r.maxMs.toFixed(1)} | ${r === oursHydration ? '1×' : `${(oursHydration.medianMs / r.medianMs).toFixed(2)}× our time`} |`).join('\n')}
`)

// 3. Server throughput, per store and number of clients; cost against session size.
const place = await mkdtemp(join(tmpdir(), 'ws-bench-'))
const stores: Array<[string, string]> = [
  ['memory:', 'memory'],
  [`file:${join(place, 'files')}`, 'file'],
  [`sqlite:${join(place, 'sessions.db')}`, 'sqlite'],
  ...(process.env.DATABASE_URL ? ([[process.env.DATABASE_URL, 'postgres']] as Array<[string, string]>) : []),
]
const seconds = Number(process.env.SECONDS ?? 3)
const throughput: ThroughputRow[] = []
for (const [url, label] of stores) for (const clients of [1, 16, 64]) throughput.push(await measure(url, label, clients, seconds))
if (process.env.DATABASE_URL) throughput.push(await measure(process.env.DATABASE_URL, 'postgres, 2 servers', 16, seconds, 2))
say(`## Server: patches per second over loopback

The server in a process of its own; each client owns a session and keeps one patch in flight.
${throughputTable(throughput)}
`)
const sizes: SizeRow[] = []
for (const [url, label] of stores.filter(([, label]) => label !== 'file')) for (const variables of [10, 1000, 10000]) sizes.push(await measureSessionSize(url, label, variables))
await rm(place, { recursive: true, force: true })
say(`## Server: cost of a one-key patch against session size (1 client)

| store | variables in the session | patches/s | p50 ms | p99 ms |
|---|---|---|---|---|
${sizes.map((r) => `| ${r.store} | ${r.variables} | ${r.patchesPerSecond.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`).join('\n')}
`)

// 4. Bundle sizes (peers external), and what the alternatives weigh.
const entries = await entrySizes()
const peers = ['react', 'react-dom', 'react/jsx-runtime']
const alternatives = [
  ['zustand + persist + idb-keyval', "export { create } from 'zustand'; export { persist, createJSONStorage } from 'zustand/middleware'; export { get, set } from 'idb-keyval'"],
  ['use-local-storage-state', "export { default } from 'use-local-storage-state'"],
  ['@tanstack/react-query (the optimistic recipe)', "export { QueryClient, QueryClientProvider, useQuery, useMutation } from '@tanstack/react-query'"],
] as const
const alternativeSizes = await Promise.all(alternatives.map(async ([name, code]) => [name, await sizeOfModule(code, peers)] as const))
say(`## Bundle size (minified; brotli / gzip)

| entry | own code (budget) | with the card's dependencies (TanStack Query, use-debounce, idb-keyval) |
|---|---|---|
${entries.map((r) => `| \`${r.entry}\` | ${kB(r.own.brotli)} / ${kB(r.own.gzip)} (${BUDGETS[r.entry]} kB) | ${kB(r.withDependencies.brotli)} / ${kB(r.withDependencies.gzip)} |`).join('\n')}

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
