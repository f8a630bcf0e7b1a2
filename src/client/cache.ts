import { createStore, del, entries, get, keys, set, type UseStore } from 'idb-keyval'
import type { SessionPatch, SessionSnapshot } from '../shared/protocol.js'
import type { NumberedPatch } from './changes.js'

/**
 * Where the client keeps its copy of a session: a small async key-value contract, like
 * idb-keyval's. The default is IndexedDB; pass `memoryStorage()` to keep nothing on disk.
 */
export interface CacheStorage {
  get(key: string): Promise<unknown>
  set(key: string, value: unknown): Promise<void>
  del(key: string): Promise<void>
  keys(): Promise<string[]>
  /** Every key with its value, in one read (optional: without it, `keys` then `get` each). */
  entries?(): Promise<Array<[string, unknown]>>
}

/**
 * IndexedDB through idb-keyval, in a database of the library's own. The database opens on
 * first use, so creating it touches nothing (safe during server rendering).
 *
 * @example
 * createSessionClient({ storage: indexedDbStorage('my-app', 'sessions') })
 */
export function indexedDbStorage(dbName = 'workflow-session', storeName = 'sessions'): CacheStorage {
  let store: UseStore | undefined
  /** Runs `operation`; when the connection was closed under it (Safari does), reopens once and retries. */
  const withStore = async <T>(operation: (store: UseStore) => Promise<T>): Promise<T> => {
    try {
      return await operation((store ??= createStore(dbName, storeName)))
    } catch (error) {
      if (!(error instanceof DOMException && error.name === 'InvalidStateError')) throw error
      store = createStore(dbName, storeName)
      return operation(store)
    }
  }
  return {
    get: (key) => withStore((s) => get(key, s)),
    set: (key, value) => withStore((s) => set(key, value, s)),
    del: (key) => withStore((s) => del(key, s)),
    keys: () => withStore((s) => keys<string>(s)),
    entries: () => withStore((s) => entries<string, unknown>(s)),
  }
}

/** A cache that lives as long as the page: what the client falls back to when IndexedDB fails. */
export function memoryStorage(): CacheStorage {
  const values = new Map<string, unknown>()
  return {
    get: async (key) => values.get(key),
    set: async (key, value) => void values.set(key, structuredClone(value)),
    del: async (key) => void values.delete(key),
    keys: async () => [...values.keys()],
    entries: async () => [...values.entries()].map(([key, value]) => [key, structuredClone(value)] as [string, unknown]),
  }
}

/** Bumped whenever the record's shape changes; a record of another format is discarded. */
export const CACHE_FORMAT = 2

/**
 * What one page keeps per session: the last server snapshot and every change it has not had
 * confirmed. Each page writes its own record, so two tabs never overwrite each other's changes;
 * a later page claims the records of pages that are gone.
 */
export interface CacheRecord {
  format: typeof CACHE_FORMAT
  clientId: string
  savedAt: number
  base: SessionSnapshot | null
  /** Patches that have a seq, oldest first (sent, or about to be). */
  queue: NumberedPatch[]
  /** Changes not in a patch yet; they will go out as `nextSeq` of `clientId`. */
  pending: Required<Pick<SessionPatch, 'variables' | 'deleted'>>
  nextSeq: number
}

/** Where a session's records live: `{endpoint}|{sessionId}#{clientId}`, one record per page. */
export const sessionKeyOf = (endpoint: string, sessionId: string) => `${endpoint}|${sessionId}`

/** The key of one page's record of a session (`recordKey(sessionKey, '')` is the prefix of them all). */
export const recordKey = (sessionKey: string, clientId: string) => `${sessionKey}#${clientId}`

/** The record when it is one this version wrote, else undefined (old format, corrupt, absent). */
export function readRecord(value: unknown): CacheRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const record = value as Partial<CacheRecord>
  if (record.format !== CACHE_FORMAT || typeof record.clientId !== 'string' || typeof record.nextSeq !== 'number') return undefined
  if (typeof record.pending !== 'object' || record.pending === null) return undefined
  if (!Array.isArray(record.pending.deleted) || typeof record.pending.variables !== 'object' || record.pending.variables === null) return undefined
  if (record.base !== null && (typeof record.base !== 'object' || typeof record.base.version !== 'number')) return undefined
  if (!Array.isArray(record.queue) || !record.queue.every((outbox) => typeof outbox?.seq === 'number' && typeof outbox.clientId === 'string')) {
    return undefined
  }
  return record as CacheRecord
}

/** Every readable record of one session, oldest first, with its key; unreadable ones are deleted. */
export async function readSessionRecords(storage: CacheStorage, sessionKey: string): Promise<Array<{ key: string; record: CacheRecord }>> {
  const prefix = recordKey(sessionKey, '')
  const ours = (key: unknown): key is string => typeof key === 'string' && key.startsWith(prefix)
  const pairs: Array<[string, unknown]> = storage.entries
    ? (await storage.entries()).filter(([key]) => ours(key))
    : await Promise.all((await storage.keys()).filter(ours).map(async (key) => [key, await storage.get(key)] as [string, unknown]))
  const found: Array<{ key: string; record: CacheRecord }> = []
  for (const [key, value] of pairs) {
    const record = readRecord(value)
    if (record) found.push({ key, record })
    else await storage.del(key).catch(() => {})
  }
  return found.sort((a, b) => a.record.savedAt - b.record.savedAt)
}

export interface CacheWriter {
  /** Write soon: many calls within `delayMs` become one write. */
  schedule(): void
  /** Write now (and wait for it), unless nothing changed since the last write. */
  flush(): Promise<void>
  /** Cancels a scheduled write. */
  cancel(): void
}

/**
 * Coalesces cache writes. Writes run one after another, so the last one stored is the newest.
 * `onResult` hears whether each write reached the storage.
 */
export function createCacheWriter(
  write: (record: CacheRecord) => Promise<void>,
  record: () => CacheRecord,
  onResult: (ok: boolean, error?: unknown) => void,
  delayMs = 100,
): CacheWriter {
  let timer: ReturnType<typeof setTimeout> | undefined
  let dirty = false
  let chain: Promise<void> = Promise.resolve()

  const flush = () => {
    if (timer !== undefined) clearTimeout(timer)
    timer = undefined
    if (!dirty) return chain
    dirty = false
    const value = record()
    chain = chain.then(() =>
      write(value).then(
        () => onResult(true),
        (error: unknown) => onResult(false, error),
      ),
    )
    return chain
  }
  return {
    schedule() {
      dirty = true
      timer ??= setTimeout(() => void flush(), delayMs)
    },
    flush,
    cancel() {
      if (timer !== undefined) clearTimeout(timer)
      timer = undefined
    },
  }
}
