// Server throughput: patches per second and latency through the real handler and the Node
// adapter on loopback, per store, with C concurrent clients. Each client owns one session and
// keeps one patch in flight, as the browser client does. The server runs in a process of its
// own (bench/serve-store.ts), so the load generator does not share its core.
//   npm run bench:server            (defaults: 16 clients, 4 s per store)
//   CLIENTS=64 SECONDS=10 npm run bench:server
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { tagOf } from '../src/shared/delta.js'
import type { SessionSnapshot } from '../src/shared/protocol.js'

const clients = Number(process.env.CLIENTS ?? 16)
const seconds = Number(process.env.SECONDS ?? 4)

export interface ThroughputRow {
  store: string
  clients: number
  patchesPerSecond: number
  p50: number
  p99: number
}

/** Starts bench/serve-store.ts on `storeUrl`; resolves with its URL and a way to stop it. */
export function startServerProcess(storeUrl: string): Promise<{ url: string; close: () => Promise<void> }> {
  const script = fileURLToPath(new URL('./serve-store.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script, storeUrl], { stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server for ${storeUrl} exited (${code})`)))
    child.stdout.once('data', (chunk: Buffer) =>
      resolve({
        url: chunk.toString().trim(),
        close: () =>
          new Promise<void>((done) => (child.removeAllListeners('exit'), child.once('exit', () => done()), child.kill('SIGTERM'))),
      }),
    )
  })
}

/**
 * Drives `clients` loops of patches for `seconds` against `serverCount` server processes on the
 * same store (clients take turns between them); returns the measured row.
 */
export async function measure(
  storeUrl: string,
  label: string,
  clientCount = clients,
  durationSeconds = seconds,
  serverCount = 1,
): Promise<ThroughputRow> {
  const running: Array<Awaited<ReturnType<typeof startServerProcess>>> = []
  for (let i = 0; i < serverCount; i++) running.push(await startServerProcess(storeUrl))
  const latencies: number[] = []
  const until = performance.now() + durationSeconds * 1000
  await Promise.all(
    Array.from({ length: clientCount }, async (_, client) => {
      const url = `${running[client % serverCount]!.url}/api/session/bench-${label.replace(/\W+/g, '-')}-${client}-session`
      for (let seq = 1; performance.now() < until; seq++) {
        const body = JSON.stringify({
          variables: { [`field${seq % 50}`]: `value ${seq}`, step: seq % 5 },
          clientId: `bench-${client}`,
          seq,
        })
        const started = performance.now()
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        await response.arrayBuffer()
        if (!response.ok) throw new Error(`${label}: ${response.status}`)
        latencies.push(performance.now() - started)
      }
    }),
  )
  await Promise.all(running.map((server) => server.close()))
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
  return { store: label, clients: clientCount, patchesPerSecond: latencies.length / durationSeconds, p50: at(0.5), p99: at(0.99) }
}

export function throughputTable(rows: ThroughputRow[]): string {
  const lines = ['| store | clients | patches/s | p50 ms | p99 ms |', '|---|---|---|---|---|']
  for (const row of rows)
    lines.push(`| ${row.store} | ${row.clients} | ${row.patchesPerSecond.toFixed(0)} | ${row.p50.toFixed(2)} | ${row.p99.toFixed(2)} |`)
  return lines.join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const place = await mkdtemp(join(tmpdir(), 'ws-bench-'))
  const rows = [
    await measure('memory:', 'memory'),
    await measure(`file:${join(place, 'files')}`, 'file'),
    await measure(`sqlite:${join(place, 'sessions.db')}`, 'sqlite'),
  ]
  if (process.env.DATABASE_URL) {
    rows.push(await measure(process.env.DATABASE_URL, 'postgres, 1 server'))
    rows.push(await measure(process.env.DATABASE_URL, 'postgres, 2 servers', clients, seconds, 2))
  }
  await rm(place, { recursive: true, force: true })
  console.log(throughputTable(rows))
}

export interface SizeRow {
  store: string
  variables: number
  /** The client stated its version (`Session-Base`): each answer is a delta, not the session. */
  deltas: boolean
  patchesPerSecond: number
  p50: number
  p99: number
}

/**
 * How a patch's cost grows with the session: one client patching a session of `variables`
 * variables, answered whole (no base stated, as before deltas) or as deltas (`deltas`).
 */
export async function measureSessionSize(
  storeUrl: string,
  label: string,
  variables: number,
  deltas = false,
  durationSeconds = 2,
): Promise<SizeRow> {
  const server = await startServerProcess(storeUrl)
  const url = `${server.url}/api/session/bench-size-${label.replace(/\W+/g, '-')}-${variables}-${deltas ? 'deltas' : 'whole'}`
  /** The tag of the version the client holds (from the last answer), when it reads deltas. */
  let held: string | undefined
  const post = async (body: unknown) => {
    const headers: Record<string, string> = { 'content-type': 'application/json', ...(held && { 'session-base': held }) }
    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) })
    // Read whole either way; parsed only when the client reads deltas (a small body), as the cost measured is the server's.
    if (deltas) held = tagOf((await response.json()) as SessionSnapshot)
    else await response.arrayBuffer()
  }
  for (let start = 0; start < variables; start += 1000) {
    await post({
      variables: Object.fromEntries(
        Array.from({ length: Math.min(1000, variables - start) }, (_, i) => [`v${start + i}`, `value ${start + i}`]),
      ),
    })
  }
  const latencies: number[] = []
  const until = performance.now() + durationSeconds * 1000
  for (let seq = 1; performance.now() < until; seq++) {
    const started = performance.now()
    await post({ variables: { [`v${seq % variables}`]: `changed ${seq}` }, clientId: 'size-bench', seq })
    latencies.push(performance.now() - started)
  }
  await server.close()
  latencies.sort((a, b) => a - b)
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]!
  return { store: label, variables, deltas, patchesPerSecond: latencies.length / durationSeconds, p50: at(0.5), p99: at(0.99) }
}
