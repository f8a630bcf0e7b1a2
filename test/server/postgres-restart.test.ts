import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import pg from 'pg'
import { afterAll, beforeAll, expect, it, vi } from 'vitest'
import { startPrivateCluster } from '../pg-cluster.js'

// Two app server processes on one PostgreSQL server of this test's own, which the test really
// stops and starts while clients keep writing: the servers must stay up, answer 503 while the
// database is away, recover by themselves, lose nothing and apply nothing twice.

interface ServerProcess {
  url: string
  child: ChildProcess
  output: () => string
}

let cluster: Awaited<ReturnType<typeof startPrivateCluster>>
const servers: ServerProcess[] = []
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function startServer(storeUrl: string): Promise<ServerProcess> {
  const script = fileURLToPath(new URL('../../bench/serve-store.ts', import.meta.url))
  const child = spawn(process.execPath, ['--import', 'tsx', script, storeUrl], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited (${code}) before it listened: ${output}`)))
    child.stdout.once('data', (chunk: Buffer) => {
      child.removeAllListeners('exit')
      resolve({ url: chunk.toString().trim(), child, output: () => output })
    })
  })
}

async function stopServer(server: ServerProcess): Promise<void> {
  if (server.child.exitCode !== null || server.child.signalCode !== null) return
  const exited = new Promise((resolve) => server.child.once('exit', resolve))
  server.child.kill('SIGTERM')
  const timer = setTimeout(() => server.child.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(timer)
}

/** Follows `GET …/events` of a session: the versions its snapshots arrive with. */
function follow(serverUrl: string, sessionId: string) {
  const versions: number[] = []
  const abort = new AbortController()
  void (async () => {
    const response = await fetch(`${serverUrl}/api/session/${sessionId}/events`, { signal: abort.signal })
    const decoder = new TextDecoder()
    let text = ''
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      text += decoder.decode(chunk, { stream: true })
      for (const match of text.matchAll(/^id: (\d+)$/gm)) versions.push(Number(match[1]))
      text = text.slice(text.lastIndexOf('\n') + 1)
    }
  })().catch(() => {})
  return { versions, stop: () => abort.abort() }
}

async function post(serverUrl: string, sessionId: string, body: unknown): Promise<Response> {
  return fetch(`${serverUrl}/api/session/${sessionId}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

beforeAll(async () => {
  cluster = await startPrivateCluster()
  servers.push(await startServer(cluster.url)) // the first makes the table
  servers.push(await startServer(cluster.url))
}, 60_000)

afterAll(async () => {
  await Promise.all(servers.map(stopServer))
  await cluster?.close()
}, 30_000)

it('survives a database restart under load: 503 unavailable meanwhile, writes again within 5 s, nothing lost or applied twice, live changes across servers again', async () => {
  const [a, b] = servers as [ServerProcess, ServerProcess]
  const live = follow(b.url, 'restart-live-session')
  await sleep(200)

  const statuses: number[] = []
  const refusals: string[] = []
  const lastOk = [0, 0]
  const acked = new Map<string, number>()
  let running = true
  const writers = Array.from({ length: 8 }, async (_, writer) => {
    const server = servers[writer % 2]!
    const sessionId = `restart-writer-${writer}`
    for (let seq = 1; running; seq++) {
      // Like the client: the same clientId and seq until the server acknowledges it.
      for (;;) {
        const response = await post(server.url, sessionId, { variables: { [`s${seq}`]: seq }, clientId: `writer-${writer}`, seq }).catch(
          () => null,
        )
        if (!response) throw new Error(`server ${writer % 2} did not answer: it is down`)
        statuses.push(response.status)
        const body = await response.json()
        if (response.status === 200) {
          acked.set(sessionId, seq)
          lastOk[writer % 2] = performance.now()
          break
        }
        if (response.status !== 503 || body.error?.code !== 'unavailable' || response.headers.get('retry-after') !== '1') {
          refusals.push(`${response.status} ${JSON.stringify(body)} retry-after=${response.headers.get('retry-after')}`)
        }
        await sleep(50)
      }
    }
  })

  await sleep(800)
  await cluster.stop() // every connection is ended; nothing answers on the port
  await sleep(1500)
  const outage503s = statuses.filter((status) => status === 503).length
  await cluster.start()
  const upAt = performance.now()
  await vi.waitFor(() => expect(Math.min(...lastOk)).toBeGreaterThan(upAt), { timeout: 5000, interval: 20 })
  const recoveredInMs = Math.min(...lastOk) - upAt
  await sleep(500)
  running = false
  await Promise.all(writers)

  expect(refusals).toEqual([])
  expect(outage503s).toBeGreaterThan(0)
  expect(recoveredInMs).toBeLessThan(5000)
  for (const server of servers) {
    expect(server.child.exitCode).toBeNull()
    expect(server.output()).toBe('')
  }

  // Every acknowledged patch is there once: version = number of patches, one key per seq.
  for (const [sessionId, lastSeq] of acked) {
    const snapshot = await (await fetch(`${a.url}/api/session/${sessionId}`)).json()
    expect(snapshot.version, sessionId).toBe(lastSeq)
    expect(Object.keys(snapshot.variables).sort(), sessionId).toEqual(Array.from({ length: lastSeq }, (_, i) => `s${i + 1}`).sort())
  }

  // A write through A reaches B's subscriber again.
  const written = await (await post(a.url, 'restart-live-session', { variables: { after: 'restart' } })).json()
  await vi.waitFor(() => expect(live.versions).toContain(written.version), { timeout: 3000, interval: 20 })
  live.stop()
}, 60_000)

it("delivers a change made while a server's LISTEN connection was down, once it is back", async () => {
  const [a, b] = servers as [ServerProcess, ServerProcess]
  const live = follow(b.url, 'relisten-session')
  await sleep(200)
  const admin = new pg.Client({ connectionString: cluster.url })
  await admin.connect()
  try {
    // End only the listening connections: the pools stay, so A writes at once, unheard by B.
    const { rows } = await admin.query<{ ended: boolean }>(
      "SELECT pg_terminate_backend(pid) AS ended FROM pg_stat_activity WHERE application_name = 'workflow-session listen'",
    )
    expect(rows.length).toBe(2)
    const written = await (await post(a.url, 'relisten-session', { variables: { while: 'nobody listened' } })).json()
    expect(written.version).toBe(1)
    await vi.waitFor(() => expect(live.versions).toContain(1), { timeout: 3000, interval: 20 })
  } finally {
    await admin.end()
    live.stop()
  }
  for (const server of servers) expect(server.child.exitCode).toBeNull()
}, 30_000)

it('refuses to open a store on an unreachable database with one clear error naming host and database', async () => {
  const { openStore } = await import('../../src/server/index.js')
  const unreachable = `postgres://postgres@127.0.0.1:${cluster.port + 1}/orders_db`
  const started = performance.now()
  const failure = await openStore(unreachable).then(
    () => null,
    (error: Error & { code?: string }) => error,
  )
  expect(failure).toMatchObject({ code: 'unavailable' })
  expect(failure!.message).toMatch(
    new RegExp(
      `^postgresStore: cannot open the session table at 127\\.0\\.0\\.1:${cluster.port + 1}, database "orders_db": .*ECONNREFUSED`,
    ),
  )
  expect(failure!.message).not.toContain('\n')
  expect(performance.now() - started).toBeLessThan(6000)

  // The demo (what `npm start` runs) says so in one line and exits 1, so that an orchestrator restarts it.
  const demo = spawn(process.execPath, ['--import', 'tsx', 'demo/server.ts'], {
    env: { ...process.env, PORT: '0', SESSION_STORE: unreachable },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  demo.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()))
  const code = await new Promise((resolve) => demo.once('exit', resolve))
  expect(code).toBe(1)
  expect(stderr.trim().split('\n')).toHaveLength(1)
  expect(stderr).toMatch(/^workflow-session demo: postgresStore: cannot open the session table at 127\.0\.0\.1:\d+, database "orders_db"/)
}, 30_000)
