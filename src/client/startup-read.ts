import { readRecord, readSessionRecords, recordKey, type CacheRecord, type CacheStorage } from './cache.js'
import { livePages, type PageLocks } from './tabs.js'

export type SessionRecords = Array<{ key: string; record: CacheRecord }>

/** Clients stopped in this page (realm): their records may change after another client began reading. */
export const stoppedInThisPage = new Set<string>()

/**
 * Begins reading a session's local copy: every page's record, and which pages are alive now.
 * In a browser the client starts this as it is made, so the read overlaps the first render.
 */
export function beginRead(storage: CacheStorage, sessionKey: string, locks: PageLocks | null): Promise<[SessionRecords, Set<string>]> {
  return Promise.all([readSessionRecords(storage, sessionKey), livePages(locks).catch(() => new Set<string>())])
}

/**
 * Finishes the read for `start()`: the records (read again where they may have changed since
 * `preloaded` began) and the pages alive now. Null when the storage refused to be read.
 */
export async function finishRead(options: {
  storage: CacheStorage
  sessionKey: string
  clientId: string
  locks: PageLocks | null
  preloaded: Promise<[SessionRecords, Set<string>]> | undefined
}): Promise<{ records: SessionRecords; alive: Set<string> } | null> {
  const { storage, sessionKey, clientId, locks, preloaded } = options
  const [read, alive] = await Promise.all([
    (preloaded ?? beginRead(storage, sessionKey, null)).then(
      ([records, aliveThen]) => ({ records, aliveThen }),
      () => null,
    ),
    livePages(locks).catch(() => new Set<string>()),
  ])
  if (!read) return null
  if (!preloaded) return { records: read.records, alive }
  // What is taken over must be current: pages that closed since the preload, and clients
  // stopped in this page, may have written their last changes after it. Read those again.
  const recheck = new Set([...read.aliveThen].filter((id) => !alive.has(id)))
  for (const id of stoppedInThisPage) if (!alive.has(id)) recheck.add(id)
  recheck.delete(clientId)
  if (recheck.size === 0) return { records: read.records, alive }
  const fresh = await Promise.all(
    [...recheck].map(async (id) => {
      const key = recordKey(sessionKey, id)
      return { key, record: readRecord(await storage.get(key).catch(() => undefined)) }
    }),
  )
  const records = read.records.filter((entry) => !recheck.has(entry.record.clientId))
  for (const { key, record } of fresh) if (record) records.push({ key, record })
  return { records: records.sort((a, b) => a.record.savedAt - b.record.savedAt), alive }
}
