import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { runConformance } from '../../src/conformance.js'
import { type PythonServer, startPython, stopAllPython, stopPython } from './venv.js'

let place = ''
let server: PythonServer
beforeAll(async () => {
  place = await mkdtemp(join(tmpdir(), 'ws-python-conformance-'))
  // The Python package's own server on its default store (SQLite), with the conformance step; the
  // user comes from a header, as the TypeScript server's conformance test does.
  server = await startPython(
    [
      '-m',
      'workflow_session.serve',
      '--store',
      `sqlite:${join(place, 'sessions.db')}`,
      '--port',
      '0',
      '--conformance',
      '--user-header',
      'x-user',
    ],
    'workflow-session on',
  )
}, 60_000)
afterAll(async () => {
  await stopAllPython()
  if (place) await rm(place, { recursive: true, force: true })
})

it('the Python server passes the conformance suite, with nothing failed or skipped', async () => {
  const results = await runConformance(server.url, { userHeaders: { 'x-user': 'conformance-user' } })
  const failed = results.filter((result) => !result.ok)
  const skipped = results.filter((result) => result.skipped)
  expect(failed, server.output()).toEqual([])
  expect(skipped).toEqual([])
  expect(results.length).toBeGreaterThanOrEqual(30)
  console.log(`Python server: ${results.length - failed.length} passed, ${failed.length} failed`)
}, 120_000)

it('stops on SIGTERM with exit code 0', async () => {
  expect(await stopPython(server.child)).toBe(0)
})
