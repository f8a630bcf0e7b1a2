import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { fileStore, type SessionHead } from '../../src/server/index.js'

const writer = fileURLToPath(new URL('./fixtures/file-writer.ts', import.meta.url))
let dir = ''
afterAll(() => rm(dir, { recursive: true, force: true }))

/** Starts the writer, lets it write at least once, then kills it (SIGKILL) a random moment later. */
async function writeThenKill(delayMs: number): Promise<number> {
  const child = spawn(process.execPath, ['--import', 'tsx', writer, dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  let writes = 0
  await new Promise<void>((resolve, reject) => {
    child.once('error', reject)
    child.stdout.on('data', (chunk: Buffer) => {
      writes += chunk.toString().split('\n').filter(Boolean).length
      if (writes === 1) setTimeout(() => child.kill('SIGKILL'), delayMs)
    })
    child.once('exit', () => resolve())
  })
  return writes
}

it('leaves the old file or the new one, never a torn one, when the process is killed mid-write', async () => {
  dir = await mkdtemp(join(tmpdir(), 'ws-crash-'))
  let total = 0
  let killedMidWrite = 0
  // Kill at random moments until at least three kills caught a write half done (its .tmp left).
  let round = 0
  for (; killedMidWrite < 3 && round < 40; round++) {
    total += await writeThenKill(Math.floor(Math.random() * 40))
    if ((await readdir(dir)).some((name) => name.endsWith('.tmp'))) killedMidWrite++
    const file = JSON.parse(await readFile(join(dir, 'crash-test.json'), 'utf8')) as {
      head: SessionHead
      variables: { n: number; blob: string }
    }
    const { n, blob } = file.variables
    expect(blob).toBe(String.fromCharCode(97 + (n % 26)).repeat(256 * 1024))
    expect(file.head.version).toBeGreaterThanOrEqual(round + 1)
  }
  expect(killedMidWrite).toBe(3)
  expect(total).toBeGreaterThan(round)

  // Reopening clears what the kills left half-written beside the real file.
  const store = fileStore(dir)
  expect(await store.get('crash-test')).not.toBeNull()
  expect((await readdir(dir)).filter((name) => name.endsWith('.tmp'))).toEqual([])
  await store.close()
}, 120_000)
