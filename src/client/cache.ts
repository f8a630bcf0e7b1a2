import { createStore, del, get, set, type UseStore } from 'idb-keyval'
import type { SessionPatch, SessionSnapshot } from '../shared/protocol.js'
import type { Outbox } from './changes.js'

/**
 * Where the client keeps its copy of a session: a small async key-value contract, like
 * idb-keyval's. The default is IndexedDB; pass `memoryStorage()` to keep nothing on disk.
 */
export interface CacheStorage {
  get(key: string): Promise<unknown>
  set(key: string, value: unknown): Promise<void>
  del(key: string): Promise<void>
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
  const useStore = () => (store ??= createStore(dbName, storeName))
  return {
    get: (key) => get(key, useStore()),
    set: (key, value) => set(key, value, useStore()),
    del: (key) => del(key, useStore()),
  }
}

/** A cache that lives as long as the page: what the client falls back to when IndexedDB fails. */
export function memoryStorage(): CacheStorage {
  const values = new Map<string, unknown>()
  return {
    get: async (key) => values.get(key),
    set: async (key, value) => void values.set(key, structuredClone(value)),
    del: async (key) => void values.delete(key),
  }
}

/** Bumped whenever the record's shape changes; a record of another format is discarded. */
export const CACHE_FORMAT = 1

/** What is cached per session: the last server snapshot and every change not yet confirmed. */
export interface CacheRecord {
  format: typeof CACHE_FORMAT
  base: SessionSnapshot | null
  inflight: Outbox | null
  pending: Required<Pick<SessionPatch, 'variables' | 'deleted'>>
}

/** The record when it is one this version wrote, else undefined (old format, corrupt, absent). */
export function readRecord(value: unknown): CacheRecord | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const record = value as Partial<CacheRecord>
  if (record.format !== CACHE_FORMAT || typeof record.pending !== 'object' || record.pending === null) return undefined
  if (!Array.isArray(record.pending.deleted) || typeof record.pending.variables !== 'object') return undefined
  if (record.base !== null && typeof record.base?.version !== 'number') return undefined
  if (record.inflight !== null && typeof record.inflight?.seq !== 'number') return undefined
  return record as CacheRecord
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
  storage: CacheStorage,
  key: string,
  record: () => CacheRecord,
  onResult: (ok: boolean, error?: unknown) => void,
  delayMs = 25,
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
      storage.set(key, value).then(
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
