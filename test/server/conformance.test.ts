import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runConformance } from '../../src/conformance.js'
import { createSessionHandler, memoryStore, serve, type RunningServer } from '../../src/server/index.js'

let server: RunningServer
beforeAll(async () => {
  server = await serve({ handler: createSessionHandler({ store: memoryStore(), authorize: (request) => request.headers.get('x-user') }), port: 0 })
})
afterAll(() => server.close())

it("passes every check against the package's own server over HTTP, anonymous and as a user", async () => {
  for (const headers of [{}, { 'x-user': 'conformance' }] as Array<Record<string, string>>) {
    const results = await runConformance(`${server.url}/api/session`, { headers })
    expect(results.filter((result) => !result.ok)).toEqual([])
    expect(results.length).toBeGreaterThanOrEqual(20)
  }
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
  expect(failed.length).toBeGreaterThanOrEqual(18)
  expect(failed.every((result) => typeof result.detail === 'string' && result.detail.length > 0)).toBe(true)
})

it('runs as a command and ends with "N passed, N failed"', async () => {
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'conformance', `${server.url}/api/session`, '--header', 'x-user: cli'])
  const lines = stdout.trim().split('\n')
  expect(lines.at(-1)).toMatch(/^\d+ passed, 0 failed$/)
  expect(lines.filter((line) => line.startsWith('✓')).length).toBe(Number(lines.at(-1)!.split(' ')[0]))
})

it('exits 2 with a usage line when called wrongly', async () => {
  const failure = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'conformance']).catch((error: { code: number; stderr: string }) => error)
  expect(failure).toMatchObject({ code: 2, stderr: expect.stringContaining('usage: workflow-session conformance') })
})
