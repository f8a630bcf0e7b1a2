import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'
import { sqliteStore } from '../../src/server/index.js'

// A process writing to SQLite (several clients, their patches committed together) is killed
// at random moments: every patch it acknowledged is there after a restart, once.

const writer = fileURLToPath(new URL('./fixtures/sqlite-crash-writer.ts', import.meta.url))
let dir = ''
afterAll(() => rm(dir, { recursive: true, force: true }))

/** Runs the writer until SIGKILL `delayMs` after its first acknowledgement; returns the last acknowledged seq per client. */
function writeThenKill(path: string, delayMs: number): Promise<Map<number, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', writer, path], { stdio: ['ignore', 'pipe', 'inherit'] })
  const acked = new Map<number, number>()
  let rest = ''
  return new Promise((resolve, reject) => {
    child.once('error', reject)
    child.stdout.on('data', (chunk: Buffer) => {
      const lines = (rest + chunk.toString()).split('\n')
      rest = lines.pop()!
      for (const line of lines) {
        const [client, seq] = line.split(' ').map(Number) as [number, number]
        if (acked.size === 0) setTimeout(() => child.kill('SIGKILL'), delayMs)
        acked.set(client, Math.max(acked.get(client) ?? 0, seq))
      }
    })
    child.once('exit', () => resolve(acked))
  })
}

it('keeps every acknowledged patch, once, when the writing process is killed mid-commit', async () => {
  dir = await mkdtemp(join(tmpdir(), 'ws-sqlite-crash-'))
  const path = join(dir, 'sessions.db')
  const total = new Map<number, number>()
  for (let round = 0; round < 5; round++) {
    const acked = await writeThenKill(path, 50 + Math.floor(Math.random() * 150))
    for (const [client, seq] of acked) total.set(client, Math.max(total.get(client) ?? 0, seq))
    // Each round's writer starts its seqs at 1 again: a replayed seq is not applied twice, so
    // after round 0 the versions grow only by the seqs above what was stored.
    const store = await sqliteStore(path)
    for (const [client, seq] of total) {
      const snapshot = await store.get(`crash-session-${client}`)
      expect(snapshot, `client ${client}, round ${round}`).not.toBeNull()
      // Every acknowledged seq is there, and nothing beyond what was written twice.
      expect(snapshot!.version).toBeGreaterThanOrEqual(seq)
      for (let s = 1; s <= seq; s++) expect(snapshot!.variables, `client ${client} seq ${s}`).toHaveProperty(`s${s}`)
      expect(Object.keys(snapshot!.variables)).toHaveLength(snapshot!.version)
    }
    await store.close()
  }
  expect([...total.values()].reduce((sum, seq) => sum + seq, 0)).toBeGreaterThan(40)
}, 120_000)
