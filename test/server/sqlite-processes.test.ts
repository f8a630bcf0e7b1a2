import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSessionHandler, sqliteStore as openSqliteStore, type SqliteStoreOptions } from '../../src/server/index.js'

// Several processes sharing one SQLite file: a writer that finds the file locked waits for it
// (busy timeout) instead of failing; past the timeout the request is a retryable 503. With both
// bindings: they report a locked file differently.

let dir = ''
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ws-sqlite-procs-'))
})
afterAll(() => rm(dir, { recursive: true, force: true }))

function runFixture(name: string, args: string[], onLine?: (line: string) => void): Promise<string> {
  const script = fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url))
  // node:sqlite is experimental on Node 22, which says so once per process: not the test's business.
  const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', 'tsx', script, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => {
    output += chunk.toString()
    if (onLine && output.includes('\n')) onLine(output.trim())
  })
  return new Promise((resolve, reject) =>
    child.once('exit', (code) => (code === 0 ? resolve(output) : reject(new Error(`${name} exited ${code}`)))),
  )
}

/** Starts the lock holder and resolves once it holds the lock, with its exit. */
async function holdLock(path: string, holdMs: number): Promise<{ released: Promise<string> }> {
  let locked!: () => void
  const holding = new Promise<void>((resolve) => (locked = resolve))
  const released = runFixture('sqlite-lock.ts', [path, String(holdMs)], () => locked())
  await holding
  return { released }
}

describe.each(['better-sqlite3', 'node:sqlite'] as const)('with %s', (driver) => {
  const sqliteStore = (path: string, options: SqliteStoreOptions = {}) => openSqliteStore(path, { ...options, driver })

  it('two processes writing one session of one file: every patch applied once, no request failed', async () => {
    const path = join(dir, `shared-${driver}.db`)
    await (await sqliteStore(path)).close() // the schema first, as a deployment's first start does
    const results = await Promise.all(['left', 'right'].map((clientId) => runFixture('sqlite-writer.ts', [path, clientId, '300', driver])))
    for (const result of results) expect(JSON.parse(result)).toEqual({ applied: 300, errors: [] })
    const store = await sqliteStore(path)
    const snapshot = await store.get('shared-sqlite-session')
    expect(snapshot!.version).toBe(600)
    expect(Object.keys(snapshot!.variables)).toHaveLength(600)
    await store.close()
    // Two processes that open a file nobody made yet, at the same moment, both set it up.
    const fresh = join(dir, `fresh-${driver}.db`)
    const again = await Promise.all(['left', 'right'].map((clientId) => runFixture('sqlite-writer.ts', [fresh, clientId, '20', driver])))
    for (const result of again) expect(JSON.parse(result)).toEqual({ applied: 20, errors: [] })
  }, 60_000)

  it('waits for another process that holds the file locked, then writes', async () => {
    const path = join(dir, `locked-${driver}.db`)
    const store = await sqliteStore(path)
    const { released } = await holdLock(path, 600)
    const started = performance.now()
    const { snapshot } = await store.apply('waited-session', { variables: { a: 1 } })
    expect(snapshot.version).toBe(1)
    expect(performance.now() - started).toBeGreaterThan(300) // it did wait for the lock
    await released
    await store.close()
  }, 30_000)

  it('answers 503 unavailable, changing nothing, when the lock outlasts the busy timeout', async () => {
    const path = join(dir, `long-lock-${driver}.db`)
    const store = await sqliteStore(path, { busyTimeoutMs: 100 })
    await store.apply('busy-session-1', { variables: { a: 1 } })
    const handler = createSessionHandler({ store })
    const { released } = await holdLock(path, 1500)
    const response = await handler(
      new Request('http://localhost/api/session/busy-session-1', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: '{"variables":{"a":2}}',
      }),
    )
    expect(response.status).toBe(503)
    expect(response.headers.get('retry-after')).toBe('1')
    expect((await response.json()).error.code).toBe('unavailable')
    await released
    expect(await store.get('busy-session-1')).toMatchObject({ version: 1, variables: { a: 1 } })
    await store.close()
  }, 30_000)
})
