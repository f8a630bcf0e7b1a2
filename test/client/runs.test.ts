// Runs as users meet them: the package's client against a real server process on loopback, on a
// SQLite file, with steps that take longer than a request may.
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createSessionClient, type LocalCopyStorage, memoryLocalCopy, RunFailedError, type SessionClient } from '../../src/client/index.js'
import { stopProcess } from '../processes.js'

const fixture = join(import.meta.dirname, 'fixtures', 'run-server.ts')
let dir: string
const children: ChildProcess[] = []
const clients: SessionClient[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ws-runs-'))
})
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
  await Promise.all(children.splice(0).map((child) => stopProcess(child)))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

/** Starts a server process on `path`; resolves with its URL. */
async function startServer(path: string, { lostAfterMs = 30_000, slowMs = 1_000 } = {}): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(
    process.execPath,
    ['--disable-warning=ExperimentalWarning', '--import', 'tsx', fixture, path, String(lostAfterMs), String(slowMs)],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  children.push(child)
  const url = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString()
      const line = out.split('\n')[0]
      if (out.includes('\n')) resolve((JSON.parse(line!) as { url: string }).url)
    })
    child.once('exit', (code) => reject(new Error(`the server exited (${code})`)))
  })
  return { url, child }
}

function client(url: string, sessionId: string, storage: LocalCopyStorage, options: { requestTimeoutMs?: number } = {}) {
  const made = createSessionClient({
    endpoint: `${url}/api/session`,
    sessionId,
    storage,
    locks: null,
    retry: { baseMs: 50, maxMs: 200 },
    ...options,
  })
  clients.push(made)
  return made
}

const calls = async (path: string) => (await readFile(`${path}.calls`, 'utf8').catch(() => '')).split('\n').filter(Boolean)

describe('runs over real HTTP', () => {
  it('waits for a 60 s step with the default 15 s request timeout: the output, the changes merged once, progress on the way', async () => {
    const path = join(dir, 'sixty.db')
    const { url } = await startServer(path, { slowMs: 60_000 })
    const page = client(url, 'run-session-60s', memoryLocalCopy())
    await page.start()
    page.set('topic', 'tides')
    const progress: unknown[] = []
    page.subscribeRuns(() => {
      const run = page.getRuns()[0]
      if (run?.progress) progress.push(run.progress)
    })
    // The live feed is not on: progress reaches this page through its long polls.
    const output = await page.run<{ tookMs: number }>('slow')
    expect(output.tookMs).toBeGreaterThanOrEqual(60_000)
    expect(page.get('slow_done')).toBe(true)
    expect(page.getSnapshot()).toMatchObject({ topic: 'tides', slow_done: true })
    expect(await calls(path)).toHaveLength(1)
    const [run] = await page.refreshRuns()
    expect(run).toMatchObject({ status: 'succeeded', readVersion: 1, version: 2 })
    // Coalesced progress: a long poll wakes at each stored value, at most 4 a second.
    expect(progress.length).toBeGreaterThan(1)
    expect(run!.rev).toBeLessThanOrEqual(2 + Math.ceil(output.tookMs / 250) + 1)
  }, 120_000)

  it('a reload mid-run starts nothing again: the new page finds the run it started, follows it and gets the output', async () => {
    const path = join(dir, 'reload.db')
    const { url } = await startServer(path, { slowMs: 1_500 })
    const storage = memoryLocalCopy()
    const before = client(url, 'run-session-reload', storage)
    await before.start()
    const started = await before.startRun('slow')
    expect(started.status).toBe('running')
    await before.stop() // the tab reloads
    const after = client(url, 'run-session-reload', storage)
    await after.start() // starts the kept start again, under its id: the server answers the same run
    const ended = await after.watchRun(started.runId)
    expect(ended).toMatchObject({ runId: started.runId, status: 'succeeded' })
    expect(await calls(path)).toEqual([started.runId])
    expect((await after.refreshRuns()).map((run) => run.runId)).toEqual([started.runId])
  })

  it('a run started before its answer came back (the page closed first) is started again under its id after the reload, once', async () => {
    const path = join(dir, 'unanswered.db')
    const { url } = await startServer(path, { slowMs: 300 })
    const storage = memoryLocalCopy()
    // The start was kept on the device, but the page went away before the request left.
    await storage.set(`${url}/api/session|run-session-kept!runs`, [{ runId: 'run-kept-start1', step: 'slow' }])
    const page = client(url, 'run-session-kept', storage)
    await page.start()
    await expect.poll(() => page.getRuns()[0]?.status, { timeout: 10_000 }).toBe('succeeded')
    expect(await calls(path)).toEqual(['run-kept-start1'])
    // Its end was seen: the start is no longer kept.
    await expect.poll(async () => storage.get(`${url}/api/session|run-session-kept!runs`)).toEqual([])
  })

  it('a start whose answer is lost on the way back (the server has it) is sent again under its id, and the step runs once', async () => {
    const path = join(dir, 'lost-answer.db')
    const { url } = await startServer(path, { slowMs: 300 })
    let dropped = 0
    // A network that loses the first two answers to a start after the server received it.
    const flaky: typeof fetch = async (input, init) => {
      const response = await fetch(input, init)
      if (init?.method === 'POST' && String(input).includes('/runs') && dropped < 2) {
        dropped++
        throw new TypeError('fetch failed: the connection was reset')
      }
      return response
    }
    const page = createSessionClient({
      endpoint: `${url}/api/session`,
      sessionId: 'run-session-flaky',
      storage: memoryLocalCopy(),
      locks: null,
      retry: { baseMs: 50, maxMs: 200 },
      fetch: flaky,
    })
    clients.push(page)
    await page.start()
    const output = await page.run<{ tookMs: number }>('slow')
    expect(output.tookMs).toBeGreaterThanOrEqual(300)
    expect(dropped).toBe(2)
    expect(await calls(path)).toHaveLength(1)
  })

  it('a cancel from another tab ends the run: the page that waits gets a RunFailedError, and nothing is merged', async () => {
    const path = join(dir, 'cancel.db')
    const { url } = await startServer(path, { slowMs: 20_000 })
    const one = client(url, 'run-session-cancel', memoryLocalCopy())
    const two = client(url, 'run-session-cancel', memoryLocalCopy())
    await one.start()
    const waiting = one.run('slow')
    await expect.poll(async () => (await two.refreshRuns())[0]?.status).toBe('running')
    const cancelled = await two.cancelRun(two.getRuns()[0]!.runId)
    expect(cancelled.status).toBe('cancelled')
    const failure = await waiting.catch((error: unknown) => error)
    expect(failure).toBeInstanceOf(RunFailedError)
    expect(failure).toMatchObject({ code: 'cancelled', run: { status: 'cancelled' } })
    expect(one.get('slow_done')).toBeUndefined()
  })

  it('a server killed mid-run (SIGKILL): a second server on the same file ends the run lost, and the waiting page is told', async () => {
    const path = join(dir, 'killed.db')
    const first = await startServer(path, { slowMs: 60_000 })
    const page = client(first.url, 'run-session-killed', memoryLocalCopy())
    await page.start()
    const started = await page.startRun('slow')
    first.child.kill('SIGKILL')
    // Another server of the app, on the same database, with a short bound for the test.
    const second = await startServer(path, { lostAfterMs: 1_000, slowMs: 60_000 })
    const other = client(second.url, 'run-session-killed', memoryLocalCopy())
    const startedAt = Date.now()
    const ended = await other.watchRun(started.runId)
    expect(ended).toMatchObject({ status: 'lost', error: { code: 'lost' } })
    expect(Date.now() - startedAt).toBeLessThan(10_000)
    // Never left running: a start of its step now begins a new run.
    expect((await other.startRun('slow')).runId).not.toBe(started.runId)
  })
})
