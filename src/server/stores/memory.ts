import type { SessionSnapshot } from '../../shared/protocol.js'
import { mergeSession, type SessionRecord } from '../merge.js'
import { byNewest, summarize, type SessionStore } from './types.js'

/**
 * Sessions in this process's memory: for tests, Storybook and prototypes. Hands out copies, so
 * nothing a caller does to a returned snapshot reaches the store.
 *
 * @example
 * const handler = createSessionHandler({ store: memoryStore() })
 */
export function memoryStore(): SessionStore {
  const records = new Map<string, SessionRecord>()
  const copy = (snapshot: SessionSnapshot): SessionSnapshot => structuredClone(snapshot)

  return {
    async get(sessionId) {
      const record = records.get(sessionId)
      return record ? copy(record.snapshot) : null
    },
    async apply(sessionId, change, limits) {
      // Synchronous from read to write: nothing can interleave, so this is atomic.
      const { record, applied } = mergeSession(records.get(sessionId) ?? null, sessionId, structuredClone(change), new Date(), limits)
      if (applied) records.set(sessionId, record)
      return { snapshot: copy(record.snapshot), applied }
    },
    async delete(sessionId) {
      return records.delete(sessionId)
    },
    async list({ userId, limit = 50, offset = 0 } = {}) {
      const all = [...records.values()].map((record) => summarize(record.snapshot))
      const mine = userId === undefined ? all : all.filter((summary) => summary.userId === userId)
      return mine.sort(byNewest).slice(offset, offset + limit).map((summary) => ({ ...summary }))
    },
    async close() {
      records.clear()
    },
  }
}
