import { execFile } from 'node:child_process'
import { type AddressInfo, createServer } from 'node:net'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runConformance } from '../../src/conformance.js'
import {
  conformanceMigrations,
  conformanceSteps,
  createSessionHandler,
  memoryStore,
  type RunningServer,
  serve,
} from '../../src/server/index.js'

const execFileAsync = promisify(execFile)
const cli = (...args: string[]) => execFileAsync(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'conformance', ...args])
const byUser = (request: Request) => request.headers.get('x-user')

// The conformance step fails on purpose; the handler reports failing steps to onError.
const quiet = () => {}

let server: RunningServer
let withoutStep: RunningServer
let usersOnly: RunningServer
beforeAll(async () => {
  ;[server, withoutStep, usersOnly] = await Promise.all([
    serve({
      port: 0,
      handler: createSessionHandler({
        store: memoryStore({ migrations: conformanceMigrations }),
        steps: conformanceSteps,
        authorize: byUser,
        onError: quiet,
      }),
    }),
    serve({
      port: 0,
      handler: createSessionHandler({ store: memoryStore({ migrations: conformanceMigrations }), authorize: byUser, onError: quiet }),
    }),
    serve({
      port: 0,
      handler: createSessionHandler({
        store: memoryStore({ migrations: conformanceMigrations }),
        steps: conformanceSteps,
        authorize: byUser,
        requireUser: true,
        onError: quiet,
      }),
    }),
  ])
})
afterAll(() => Promise.all([server.close(), withoutStep.close(), usersOnly.close()]))

it("passes every check against the package's own server over HTTP, nothing skipped", async () => {
  const results = await runConformance(`${server.url}/api/session`, { userHeaders: { 'x-user': 'conformance' } })
  expect(results.filter((result) => !result.ok || result.skipped)).toEqual([])
  expect(results.length).toBeGreaterThanOrEqual(30)
})

it('passes as a user on a server that requires one, with the user in --header too', async () => {
  const results = await runConformance(`${usersOnly.url}/api/session`, {
    headers: { 'x-user': 'caller' },
    userHeaders: { 'x-user': 'lister' },
  })
  expect(results.filter((result) => !result.ok || result.skipped)).toEqual([])
})

it('finds the faults of a backend that breaks the protocol', async () => {
  // Accepts everything and never bumps the version: most checks must fail, and say why.
  const sloppy = await serve({
    port: 0,
    handler: async (request) => {
      const id = new URL(request.url).pathname.split('/')[3] ?? ''
      return Response.json({ sessionId: id, variables: {}, version: 0, createdAt: 'now', updatedAt: 'now' })
    },
  })
  const results = await runConformance(`${sloppy.url}/api/session`)
  await sloppy.close()
  const failed = results.filter((result) => !result.ok)
  expect(failed.length).toBeGreaterThanOrEqual(25)
  expect(failed.every((result) => typeof result.detail === 'string' && result.detail.length > 0 && result.detail.length <= 400)).toBe(true)
})

it('runs as a command and ends with "N passed, 0 failed, 0 skipped"', async () => {
  const { stdout } = await cli(`${server.url}/api/session`, '--user-header', 'x-user: cli')
  const lines = stdout.trim().split('\n')
  expect(lines.at(-1)).toMatch(/^\d+ passed, 0 failed, 0 skipped$/)
  expect(lines.filter((line) => line.startsWith('✓')).length).toBe(Number(lines.at(-1)!.split(' ')[0]))
}, 15_000) // the whole suite in a process of its own, runs of the conformance step included

it('skips the step checks without the conformance step, and the user listing and adoption without --user-header, saying once how to enable each', async () => {
  const { stdout } = await cli(`${withoutStep.url}/api/session`)
  const lines = stdout.trim().split('\n')
  // 6 step checks, 7 run checks, 2 delta checks with a step, 4 schema checks with a step, the signed-in listing and 2 of adoption
  expect(lines.at(-1)).toMatch(/^\d+ passed, 0 failed, 22 skipped$/)
  expect(lines.filter((line) => line.endsWith('(skipped)'))).toHaveLength(22)
  expect(lines.filter((line) => line.includes('conformanceSteps in TypeScript, conformance_steps in Python'))).toHaveLength(1)
  expect(lines.filter((line) => line.includes('--user-header'))).toHaveLength(1)
})

it('says in one line to pass --header when every request is answered 401, and exits 1', async () => {
  const failure = await cli(`${usersOnly.url}/api/session`).catch((error: { code: number; stdout: string }) => error)
  expect(failure).toMatchObject({ code: 1 })
  const lines = (failure as { stdout: string }).stdout.trim().split('\n')
  expect(lines).toEqual([
    expect.stringMatching(/^✗ every request was answered 401 .*--header "Cookie: …"/),
    '0 passed, 1 failed, 0 skipped',
  ])
})

it('says in one line that the backend cannot be reached, and exits 2', async () => {
  // A port that was free a moment ago: nothing listens there.
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  const failure = await cli(`http://127.0.0.1:${port}/api/session`).catch(
    (error: { code: number; stdout: string; stderr: string }) => error,
  )
  expect(failure).toMatchObject({ code: 2, stdout: '', stderr: `cannot reach http://127.0.0.1:${port}/api/session: ECONNREFUSED\n` })
})

it('exits 2 with a usage line when called wrongly', async () => {
  for (const args of [
    [],
    ['http://localhost:1/api/session', '--max-bytes', '12'],
    ['http://localhost:1/api/session', '--user-header', 'no colon'],
  ]) {
    const failure = await cli(...args).catch((error: { code: number; stderr: string }) => error)
    expect(failure).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: workflow-session conformance') })
  }
})

describe('the run checks catch a backend that breaks one rule of runs', () => {
  /** The package's handler with one rule broken by `breakIt`; the checks that fail, by name. */
  async function failuresOf(breakIt: (request: Request, handler: (request: Request) => Promise<Response>) => Promise<Response>) {
    const handler = createSessionHandler({
      store: memoryStore({ migrations: conformanceMigrations }),
      steps: conformanceSteps,
      authorize: byUser,
      onError: quiet,
      log: quiet,
    })
    const broken = await serve({ port: 0, handler: (request) => breakIt(request, handler) })
    try {
      const results = await runConformance(`${broken.url}/api/session`, { userHeaders: { 'x-user': 'conformance' } })
      return results.filter((result) => !result.ok).map((result) => result.name)
    } finally {
      await broken.close()
      await handler.close()
    }
  }
  const isStart = (request: Request) => request.method === 'POST' && new URL(request.url).pathname.endsWith('/runs')

  it('runs the step again for a run id it has (a start that makes a new id)', async () => {
    const failed = await failuresOf(async (request, handler) => {
      if (!isStart(request)) return handler(request)
      const body = (await request.json()) as { runId: string }
      const again = JSON.stringify({ ...body, runId: `${body.runId}-${Math.random().toString(36).slice(2, 8)}` })
      return handler(new Request(request.url, { method: 'POST', headers: request.headers, body: again }))
    })
    expect(failed).toContainEqual(expect.stringMatching(/^a run starts once per id/))
  })

  it('a cancel that does not cancel', async () => {
    const failed = await failuresOf(async (request, handler) => {
      const url = new URL(request.url)
      if (request.method !== 'POST' || !url.pathname.endsWith('/cancel')) return handler(request)
      return handler(new Request(url.href.replace(/\/cancel$/, ''), { headers: request.headers }))
    })
    expect(failed).toEqual([expect.stringMatching(/^cancel ends a running run cancelled/)])
  })

  it('a long poll that answers at once with nothing newer', async () => {
    const failed = await failuresOf(async (request, handler) => {
      const url = new URL(request.url)
      if (request.method !== 'GET' || !url.searchParams.has('after')) return handler(request)
      url.searchParams.delete('after')
      url.searchParams.delete('waitMs')
      return handler(new Request(url, { headers: request.headers }))
    })
    expect(failed).toContainEqual(expect.stringMatching(/^a long poll answers with a newer rev/))
  })

  it('a run id of another session that answers differently from an unknown one', async () => {
    const started = new Set<string>()
    const failed = await failuresOf(async (request, handler) => {
      if (isStart(request)) started.add(((await request.clone().json()) as { runId: string }).runId)
      const answer = await handler(request)
      const runId = new URL(request.url).pathname.split('/runs/')[1]
      // Tells the ids it has somewhere apart from unknown ones: an existence oracle.
      if (request.method === 'GET' && answer.status === 404 && runId !== undefined && started.has(runId))
        return Response.json({ error: { code: 'not_found', message: 'That run is in another session' } }, { status: 404 })
      return answer
    })
    expect(failed).toEqual([expect.stringMatching(/^a run id of another session answers exactly like an unknown one/)])
  })
})
