import { mergeSession, type SessionRecord } from '../merge.js'
import { defineStore, isExpired, pageOf, summarize, type SessionStore, type StoreOptions } from './types.js'

/**
 * Sessions in this process's memory: for tests, Storybook and prototypes. Hands out copies, so
 * nothing a caller does to a returned snapshot reaches the store.
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
      async get(sessionId) {
        const record = live(sessionId)
        return record ? structuredClone(record.snapshot) : null
      },
      async apply(sessionId, change, limits) {
        // Synchronous from read to write: nothing can interleave, so this is atomic.
        const { record, applied } = mergeSession(live(sessionId), sessionId, structuredClone(change), new Date(), limits)
        if (applied) records.set(sessionId, record)
        return { snapshot: structuredClone(record.snapshot), applied }
      },
      async delete(sessionId) {
        return live(sessionId) !== null && records.delete(sessionId)
      },
      async list(listOptions = {}) {
        const alive = [...records.keys()].map(live).filter((record): record is SessionRecord => record !== null)
        return pageOf(alive.map((record) => summarize(structuredClone(record.snapshot))), listOptions)
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
