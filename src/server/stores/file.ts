// node:fs loads when the store is first used, so importing `workflow-session/server` works in
// any runtime with the Fetch API.
type Fs = typeof import('node:fs/promises')
import { isSessionId } from '../../shared/rules.js'
import { utf8Length } from '../../shared/rules.js'
import type { SessionHead } from '../merge.js'
import { defineStore } from './define.js'
import { isExpired, pageOf } from './records.js'
import { applyPlan, type ChangeLog, emptySession, entryOf, fromSnapshotRecord, readLog, type StoredSession, summaryOf } from './stored.js'
import { type CurrentRuns, MAX_FINISHED_RUNS, type SessionStore, type StoredRun, type StoreOptions } from './types.js'

/** A session file: the head, and the variables as one JSON object (the values' own JSON text inside it). */
interface SessionFile {
  head: SessionHead
  variables: Record<string, unknown>
  /** The session's runs, in the order they started. */
  runs?: StoredRun[]
  /** The change log (files written before deltas have none). */
  log?: unknown
}

/** A session with its runs and its change log, as its file holds them. */
type FileSession = StoredSession & { runs: StoredRun[]; log: ChangeLog }

/** Reads a session file of this format, or of 0.1's `{ snapshot, clientSeqs }`. */
function parseFile(text: string): FileSession {
  const parsed = JSON.parse(text) as SessionFile | Parameters<typeof fromSnapshotRecord>[0]
  if ('snapshot' in parsed) {
    const old = fromSnapshotRecord(parsed)
    return { ...old, runs: [], log: readLog(undefined, old.head.version) }
  }
  return {
    head: parsed.head,
    entries: new Map(Object.entries(parsed.variables).map(([name, value]) => [name, entryOf(name, JSON.stringify(value))])),
    log: readLog(parsed.log, parsed.head.version),
    runs: parsed.runs ?? [],
  }
}

/** The file's text: joined from the entries, the values not serialized again. */
const fileText = (stored: FileSession) =>
  `{"head":${JSON.stringify(stored.head)},"variables":{${[...stored.entries.values()].join(',')}},"runs":${JSON.stringify(stored.runs)},"log":${JSON.stringify(stored.log)}}`

/** What `update(…, runId)` shows `decide` of a session's runs. */
function currentRuns(stored: FileSession | null, runId: string | undefined): CurrentRuns {
  if (runId === undefined || !stored) return { run: undefined, running: [] }
  return { run: stored.runs.find((run) => run.runId === runId), running: stored.runs.filter((run) => run.status === 'running') }
}

/** The runs after writing `written` (by run id), with the finished ones beyond the newest 50 dropped. */
function withRuns(runs: StoredRun[], written: readonly StoredRun[]): StoredRun[] {
  const byId = new Map(runs.map((run) => [run.runId, run]))
  for (const run of written) byId.set(run.runId, run)
  const all = [...byId.values()]
  const finished = all.filter((run) => run.status !== 'running')
  const dropped = new Set(finished.slice(0, Math.max(0, finished.length - MAX_FINISHED_RUNS)))
  return all.filter((run) => !dropped.has(run))
}

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

  async function read(sessionId: string): Promise<FileSession | null> {
    await ready
    let text: string
    try {
      text = await fs.readFile(pathOf(sessionId), 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw error
    }
    const stored = parseFile(text)
    if (isExpired(stored.head, options.ttlMs)) {
      await remove(sessionId)
      return null
    }
    return stored
  }

  async function write(sessionId: string, stored: FileSession): Promise<void> {
    const suffix = Array.from(crypto.getRandomValues(new Uint8Array(6)), (byte) => byte.toString(16).padStart(2, '0')).join('')
    const temporary = join(dir, `.${sessionId}.${suffix}.tmp`)
    const file = await fs.open(temporary, 'w')
    try {
      await file.writeFile(fileText(stored))
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
    return (await fs.readdir(dir))
      .filter((name) => name.endsWith('.json'))
      .map((name) => name.slice(0, -5))
      .filter(isSessionId)
  }

  return defineStore(
    {
      read: (sessionId, use) => queued(sessionId, async () => use(await read(sessionId))),
      update: (sessionId, _names, decide, view, runId) =>
        queued(sessionId, async () => {
          let stored = await read(sessionId)
          const current = stored && { head: stored.head, sizeOf: (name: string) => entrySize(stored!.entries.get(name)) }
          const change = decide(current, currentRuns(stored, runId))
          if (change?.head === null) {
            await remove(sessionId)
            stored = null
          } else if (change && (change.head || (stored && change.runs))) {
            stored ??= { ...emptySession(change.head!), runs: [] }
            if (change.head) applyPlan(stored, change.head, change)
            if (change.runs) stored.runs = withRuns(stored.runs, change.runs)
            await write(sessionId, stored)
          }
          return view(stored)
        }),
      runs: (sessionId, runId) =>
        queued(sessionId, async () => {
          const runs = [...((await read(sessionId))?.runs ?? [])].reverse()
          return runId === undefined ? runs : runs.filter((run) => run.runId === runId)
        }),
      async list(listOptions) {
        const stored = await Promise.all((await sessionIds()).map((id) => queued(id, () => read(id))))
        return pageOf(
          stored.filter((session): session is FileSession => session !== null).map((session) => summaryOf(session.head)),
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
            return text !== null && isExpired(parseFile(text).head, options.ttlMs) && remove(sessionId)
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

const entrySize = (entry: string | undefined) => (entry === undefined ? undefined : utf8Length(entry))
