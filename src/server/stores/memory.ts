import { utf8Length } from '../../shared/rules.js'
import { defineStore } from './define.js'
import { isExpired, pageOf } from './records.js'
import { applyPlan, emptySession, type StoredSession, summaryOf } from './stored.js'
import { type CurrentRuns, MAX_FINISHED_RUNS, type SessionStore, type StoredRun, type StoreOptions } from './types.js'

/**
 * Sessions in this process's memory: for tests, Storybook and prototypes. Values are kept as
 * JSON text, so nothing a caller does to a value given or returned reaches the store, and a
 * one-key patch costs the same on any session size.
 *
 * @example
 * const handler = createSessionHandler({ store: memoryStore({ ttlMs: 24 * 3600_000 }) })
 */
export function memoryStore(options: StoreOptions = {}): SessionStore {
  const sessions = new Map<string, StoredSession>()
  /** Each session's runs by id, in the order they started. */
  const runs = new Map<string, Map<string, StoredRun>>()
  const live = (sessionId: string): StoredSession | null => {
    const stored = sessions.get(sessionId)
    if (stored && isExpired(stored.head, options.ttlMs)) {
      sessions.delete(sessionId)
      runs.delete(sessionId)
      return null
    }
    return stored ?? null
  }

  function runsOf(sessionId: string, runId: string | undefined): CurrentRuns {
    const mine = runs.get(sessionId)
    if (runId === undefined || !mine) return { run: undefined, running: [] }
    return { run: mine.get(runId), running: [...mine.values()].filter((run) => run.status === 'running') }
  }

  function writeRuns(sessionId: string, written: readonly StoredRun[]): void {
    let mine = runs.get(sessionId)
    if (!mine) runs.set(sessionId, (mine = new Map<string, StoredRun>()))
    for (const run of written) mine.set(run.runId, run)
    const finished = [...mine.values()].filter((run) => run.status !== 'running')
    for (const run of finished.slice(0, Math.max(0, finished.length - MAX_FINISHED_RUNS))) mine.delete(run.runId)
  }

  return defineStore(
    {
      async read(sessionId, use) {
        return use(live(sessionId))
      },
      async update(sessionId, _names, decide, view, runId) {
        // Synchronous from read to write: nothing can interleave, so this is atomic.
        let stored = live(sessionId)
        const current = stored && { head: stored.head, sizeOf: (name: string) => entrySize(stored!.entries.get(name)) }
        const write = decide(current, runsOf(sessionId, runId))
        if (write?.head === null) {
          sessions.delete(sessionId)
          runs.delete(sessionId)
          stored = null
        } else if (write?.head) {
          if (!stored) sessions.set(sessionId, (stored = emptySession(write.head)))
          applyPlan(stored, write.head, write)
        }
        if (write?.runs) writeRuns(sessionId, write.runs)
        return view(stored)
      },
      async runs(sessionId, runId) {
        if (!live(sessionId)) return []
        const all = [...(runs.get(sessionId)?.values() ?? [])].reverse()
        return runId === undefined ? all : all.filter((run) => run.runId === runId)
      },
      async list(listOptions) {
        const alive = [...sessions.keys()].map(live).filter((stored): stored is StoredSession => stored !== null)
        return pageOf(
          alive.map((stored) => summaryOf(stored.head)),
          listOptions,
        )
      },
      async *ids() {
        for (const sessionId of [...sessions.keys()]) if (live(sessionId)) yield sessionId
      },
      async purgeExpired() {
        const before = sessions.size
        for (const sessionId of [...sessions.keys()]) live(sessionId)
        return before - sessions.size
      },
      async close() {},
    },
    options,
  )
}

const entrySize = (entry: string | undefined) => (entry === undefined ? undefined : utf8Length(entry))
