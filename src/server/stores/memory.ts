import type { SessionRecord } from '../merge.js'
import { defineStore } from './define.js'
import { isExpired, pageOf, summarize } from './records.js'
import type { SessionStore, StoreOptions } from './types.js'

/**
 * Sessions in this process's memory: for tests, Storybook and prototypes. Keeps its own copies,
 * so nothing a caller does to a value given or returned reaches the store.
 *
 * @example
 * const handler = createSessionHandler({ store: memoryStore({ ttlMs: 24 * 3600_000 }) })
 */
export function memoryStore(options: StoreOptions = {}): SessionStore {
  const records = new Map<string, SessionRecord>()
  const live = (sessionId: string): SessionRecord | null => {
    const record = records.get(sessionId)
    if (record && isExpired(record, options.ttlMs)) {
      records.delete(sessionId)
      return null
    }
    return record ?? null
  }

  return defineStore(
    {
      async read(sessionId) {
        const record = live(sessionId)
        return record && structuredClone(record)
      },
      async update(sessionId, decide) {
        // Synchronous from read to write: nothing can interleave, so this is atomic.
        const { write, result } = decide(structuredClone(live(sessionId)))
        if (write === null) records.delete(sessionId)
        else if (write) records.set(sessionId, structuredClone(write))
        return result
      },
      async list(listOptions) {
        const alive = [...records.keys()].map(live).filter((record): record is SessionRecord => record !== null)
        return pageOf(alive.map((record) => summarize(structuredClone(record.snapshot))), listOptions)
      },
      async *ids() {
        for (const sessionId of [...records.keys()]) if (live(sessionId)) yield sessionId
      },
      async purgeExpired() {
        const before = records.size
        for (const sessionId of [...records.keys()]) live(sessionId)
        return before - records.size
      },
      async close() {},
    },
    options,
  )
}
