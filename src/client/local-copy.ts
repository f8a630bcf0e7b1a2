import type { SessionSnapshot } from '../shared/protocol.js'
import { CACHE_FORMAT, createCacheWriter, indexedDbStorage, memoryStorage, recordKey, type CacheRecord } from './cache.js'
import { encryptedStorage } from './encrypted-storage.js'
import { beginRead, finishRead } from './startup-read.js'
import { takeOver, type PageLocks } from './tabs.js'
import type { SessionClientOptions } from './types.js'
import type { QueuedPatch } from './view.js'

export interface LocalCopy {
  /** Saves this page's record soon; many calls become one write. Nothing once discarded. */
  save(): void
  /** Writes now what changed since the last write, and waits for it. */
  flush(): Promise<void>
  /** The session was deleted from here: nothing of it is written any more. */
  discard(): void
  /** Whether writes reach the device (false: the storage refused, kept in memory only). */
  isPersistent(): boolean
  /** Reads the session's records: the newest base, and the unconfirmed patches of pages that are gone (now this page's). */
  read(nextTicket: () => number): Promise<{ base: SessionSnapshot | null; patches: QueuedPatch[] }>
  /** Deletes every page's record of the session under `sessionKey`. */
  forget(sessionKey: string): Promise<void>
}

/**
 * This page's copy of the session on the device: one record per page (so tabs never overwrite
 * each other), written soon after each change and before each request, falling back to memory
 * when IndexedDB refuses. The reading starts as the copy is made, so it overlaps the first render.
 */
export function createLocalCopy(
  options: Pick<SessionClientOptions, 'storage' | 'encryptionKey'>,
  sessionKey: string,
  clientId: string,
  locks: PageLocks | null,
  /** What the record holds now. */
  content: () => Pick<CacheRecord, 'base' | 'queue' | 'pending' | 'nextSeq'>,
  /** A write ended (`isPersistent()` may have changed). */
  onWritten: () => void,
): LocalCopy {
  const fallback = memoryStorage()
  const plain = options.storage ?? indexedDbStorage()
  let storage = options.encryptionKey ? encryptedStorage(plain, options.encryptionKey) : plain
  // In a browser, start reading now: start() only applies it. (The read changes nothing but
  // dropping unreadable records, so a client made and dropped, as StrictMode does, costs only the read.)
  const preloaded = typeof window !== 'undefined' ? beginRead(storage, sessionKey, locks) : undefined
  preloaded?.catch(() => {})
  let persistent = true
  let discarded = false
  /** Records of closed pages this page took over; deleted once our own record holds their changes. */
  const claimed: string[] = []
  const writer = createCacheWriter(
    // `storage` may become the memory fallback later: look it up at each write.
    (value) => storage.set(recordKey(sessionKey, clientId), value),
    () => ({ format: CACHE_FORMAT, clientId, savedAt: Date.now(), ...content() }),
    (ok) => {
      persistent = ok && storage !== fallback
      if (ok) for (const key of claimed.splice(0)) void storage.del(key).catch(() => {})
      onWritten()
    },
  )
  const save = () => {
    if (!discarded) writer.schedule()
  }
  return {
    save,
    flush: writer.flush,
    discard() {
      discarded = true
      writer.cancel()
    },
    isPersistent: () => persistent,
    async read(nextTicket) {
      const read = await finishRead({ storage, sessionKey, clientId, locks, preloaded })
      if (!read) {
        // IndexedDB refused (private mode, blocked, broken): keep going, in memory only.
        storage = fallback
        persistent = false
      }
      const taken = takeOver(read?.records ?? [], clientId, read?.alive ?? new Set(), nextTicket)
      claimed.push(...taken.claimed)
      if (claimed.length > 0) save()
      return taken
    },
    async forget(key) {
      const prefix = recordKey(key, '')
      for (const stored of await storage.keys().catch(() => [] as string[])) {
        if (stored.startsWith(prefix)) await storage.del(stored).catch(() => {})
      }
    },
  }
}
