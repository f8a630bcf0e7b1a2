// node:fs loads when the store is first used, so importing `workflow-session/server` works in
// any runtime with the Fetch API.
type Fs = typeof import('node:fs/promises')
import { isSessionId } from '../../shared/rules.js'
import type { SessionRecord } from '../merge.js'
import { defineStore } from './define.js'
import { isExpired, pageOf, summarize } from './records.js'
import type { SessionStore, StoreOptions } from './types.js'

/**
 * One JSON file per session in `dir`. A write goes to a temporary file, is fsynced, renamed over
 * the old file, and the directory is fsynced: a crash at any point leaves the old file or the
 * new one, never a torn one. Writes to one session are queued, so `apply` is atomic within this
 * process. Meant for one server process; run several on SQLite or PostgreSQL.
 *
 * @example
 * const store = fileStore('.data/sessions')
 */
export function fileStore(dir: string, options: StoreOptions = {}): SessionStore {
  const queues = new Map<string, Promise<unknown>>()
  let fs!: Fs
  const ready = import('node:fs/promises').then(async (loaded) => {
    fs = loaded
    await prepare(fs, dir)
  })
  const join = (...parts: string[]) => parts.join('/')
  const pathOf = (sessionId: string) => join(dir, `${sessionId}.json`)

  /** Runs `task` after every earlier task of the same session. */
  function queued<T>(sessionId: string, task: () => Promise<T>): Promise<T> {
    const previous = queues.get(sessionId) ?? Promise.resolve()
    const next = previous.then(task, task)
    const settled = next.catch(() => {})
    queues.set(sessionId, settled)
    void settled.then(() => queues.get(sessionId) === settled && queues.delete(sessionId))
    return next
  }

  async function read(sessionId: string): Promise<SessionRecord | null> {
    await ready
    let text: string
    try {
      text = await fs.readFile(pathOf(sessionId), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
    const record = JSON.parse(text) as SessionRecord
    if (isExpired(record, options.ttlMs)) {
      await remove(sessionId)
      return null
    }
    return record
  }

  async function write(sessionId: string, record: SessionRecord): Promise<void> {
    const suffix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (byte) => byte.toString(16).padStart(2, '0')).join('')
    const temporary = join(dir, `.${sessionId}.${suffix}.tmp`)
    const file = await fs.open(temporary, 'w')
    try {
      await file.writeFile(JSON.stringify(record))
      await file.sync()
    } finally {
      await file.close()
    }
    await fs.rename(temporary, pathOf(sessionId))
    await syncDirectory(fs, dir)
  }

  async function remove(sessionId: string): Promise<boolean> {
    try {
      await fs.unlink(pathOf(sessionId))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw error
    }
    await syncDirectory(fs, dir)
    return true
  }

  async function sessionIds(): Promise<string[]> {
    await ready
    return (await fs.readdir(dir)).filter((name) => name.endsWith('.json')).map((name) => name.slice(0, -5)).filter(isSessionId)
  }

  return defineStore(
    {
      read: (sessionId) => queued(sessionId, () => read(sessionId)),
      update: (sessionId, decide) =>
        queued(sessionId, async () => {
          const { write: next, result } = decide(await read(sessionId))
          if (next === null) await remove(sessionId)
          else if (next) await write(sessionId, next)
          return result
        }),
      async list(listOptions) {
        const records = await Promise.all((await sessionIds()).map((id) => queued(id, () => read(id))))
        return pageOf(
          records.filter((record): record is SessionRecord => record !== null).map((record) => summarize(record.snapshot)),
          listOptions,
        )
      },
      async *ids() {
        for (const sessionId of await sessionIds()) if (await queued(sessionId, () => read(sessionId))) yield sessionId
      },
      async purgeExpired() {
        let purged = 0
        for (const sessionId of await sessionIds()) {
          const existed = await queued(sessionId, async () => {
            const text = await fs.readFile(pathOf(sessionId), 'utf8').catch(() => null)
            return text !== null && isExpired(JSON.parse(text) as SessionRecord, options.ttlMs) && remove(sessionId)
          })
          if (existed) purged++
        }
        return purged
      },
      async close() {
        await Promise.all(queues.values())
      },
    },
    options,
  )
}

/** Creates the folder and removes temporary files a crash left behind. */
async function prepare(fs: Fs, dir: string): Promise<void> {
  await fs.mkdir(dir, { recursive: true })
  for (const name of await fs.readdir(dir)) {
    if (name.startsWith('.') && name.endsWith('.tmp')) await fs.unlink(`${dir}/${name}`).catch(() => {})
  }
}

async function syncDirectory(fs: Fs, dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}
