import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, beforeAll } from 'vitest'
import { DATABASE_URL } from '../postgres.js'
import { stopAllPython } from './venv.js'

/**
 * What a test file that runs Node and Python servers side by side makes and leaves behind: a
 * scratch folder (for a shared SQLite file) and the PostgreSQL databases it lists in `databases`.
 * After the file, every Python server it started is stopped, the folder removed and the
 * databases dropped.
 */
export function sharedScratch(prefix: string): { readonly place: string; databases: string[]; database(name: string): Promise<string> } {
  const scratch = {
    place: '',
    databases: [] as string[],
    /** Makes a fresh PostgreSQL database (named `name` plus this process and the time) and returns its URL. */
    async database(name: string): Promise<string> {
      const unique = `${name}_${process.pid}_${Date.now().toString(36)}`
      const admin = new pg.Client({ connectionString: DATABASE_URL })
      await admin.connect()
      await admin.query(`CREATE DATABASE ${unique}`)
      await admin.end()
      scratch.databases.push(unique)
      return `${DATABASE_URL.slice(0, DATABASE_URL.lastIndexOf('/'))}/${unique}`
    },
  }
  beforeAll(async () => {
    scratch.place = await mkdtemp(join(tmpdir(), prefix))
  })
  afterAll(async () => {
    await stopAllPython()
    if (scratch.place) await rm(scratch.place, { recursive: true, force: true })
    if (scratch.databases.length === 0) return
    const admin = new pg.Client({ connectionString: DATABASE_URL })
    await admin.connect()
    for (const name of scratch.databases) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    await admin.end()
  })
  return scratch
}
