import { utf8Length } from '../../shared/rules.js'
import { defineStore } from './define.js'
import { isExpired, pageOf } from './records.js'
import { applyPlan, type StoredSession, summaryOf } from './stored.js'
import type { SessionStore, StoreOptions } from './types.js'

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
  const live = (sessionId: string): StoredSession | null => {
    const stored = sessions.get(sessionId)
    if (stored && isExpired(stored.head, options.ttlMs)) {
      sessions.delete(sessionId)
      return null
    }
    return stored ?? null
  }

  return defineStore(
    {
      async read(sessionId, use) {
        return use(live(sessionId))
      },
      async update(sessionId, _names, decide, view) {
        // Synchronous from read to write: nothing can interleave, so this is atomic.
        let stored = live(sessionId)
        const current = stored && { head: stored.head, sizeOf: (name: string) => entrySize(stored!.entries.get(name)) }
        const write = decide(current)
        if (write?.head === null) {
          sessions.delete(sessionId)
          stored = null
        } else if (write) {
          if (!stored) sessions.set(sessionId, (stored = { head: write.head, entries: new Map() }))
          stored.head = write.head
          applyPlan(stored.entries, { sets: write.sets ?? new Map(), deletes: write.deletes ?? [] })
        }
        return view(stored)
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
