import { createStore, del, get, keys, promisifyRequest, set, update, type UseStore } from 'idb-keyval'
import type { SessionPatch, SessionSnapshot } from '../shared/protocol.js'
import type { NumberedPatch } from './changes.js'

/**
 * Where the client keeps its copy of a session: a small async key-value contract, like
 * idb-keyval's. The default is IndexedDB; pass `memoryLocalCopy()` to keep nothing on disk.
 */
export interface LocalCopyStorage {
  get(key: string): Promise<unknown>
  set(key: string, value: unknown): Promise<void>
  del(key: string): Promise<void>
  keys(): Promise<string[]>
  /** Replaces a value with `updater(old)` in one step (optional: without it, `get` then `set`). */
  update?(key: string, updater: (old: unknown) => unknown): Promise<void>
  /** A value and every key, in one read (optional: without it, `get` and `keys`). */
  getWithKeys?(key: string): Promise<[unknown, string[]]>
}

/**
 * IndexedDB through idb-keyval, in a database of the library's own. The database opens on
 * first use, so creating it touches nothing (safe during server rendering).
 *
 * @example
 * createSessionClient({ storage: indexedDbLocalCopy('my-app', 'sessions') })
 */
export function indexedDbLocalCopy(dbName = 'workflow-session', storeName = 'sessions'): LocalCopyStorage {
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
    update: (key, updater) => withStore((s) => update(key, updater, s)),
    getWithKeys: (key) =>
      withStore((s) =>
        s('readonly', (objects) =>
          Promise.all([promisifyRequest(objects.get(key)), promisifyRequest(objects.getAllKeys()) as Promise<string[]>]),
        ),
      ),
  }
}

/** A cache that lives as long as the page: what the client falls back to when IndexedDB fails. */
export function memoryLocalCopy(): LocalCopyStorage {
  const values = new Map<string, unknown>()
  return {
    get: async (key) => values.get(key),
    set: async (key, value) => void values.set(key, structuredClone(value)),
    del: async (key) => void values.delete(key),
    keys: async () => [...values.keys()],
    update: async (key, updater) => void values.set(key, structuredClone(updater(values.get(key)))),
  }
}

/** Bumped whenever a record's shape changes. Format 2 (one record per page, base included) is still read. */
export const CACHE_FORMAT = 3

/**
 * The last snapshot the server confirmed: one record per session, shared by its pages. The
 * snapshot is kept as JSON text, which IndexedDB stores and reads back as one string (several
 * times faster to read than the same object cloned property by property).
 */
export interface BaseRecord {
  format: typeof CACHE_FORMAT
  savedAt: number
  version: number
  /** The snapshot, as JSON. */
  snapshot: string
}

/**
 * One page's changes the server has not confirmed, kept only while there are some. Each page
 * writes its own, so two tabs never overwrite each other's changes; a later page takes over the
 * records of pages that are gone.
 */
export interface OutboxRecord {
  format: typeof CACHE_FORMAT
  clientId: string
  savedAt: number
  /** Patches that have a seq, oldest first (sent, or about to be). */
  queue: NumberedPatch[]
  /** Changes not in a patch yet; they will go out as `nextSeq` of `clientId`. */
  pending: Required<Pick<SessionPatch, 'variables' | 'deleted'>>
  nextSeq: number
  /** The schema version `pending` was written in (absent: 1); each queued patch says its own. */
  schemaVersion?: number
}

/** An outbox record as read: format 2 records also carried the page's base. */
export type ReadOutbox = OutboxRecord & { base?: SessionSnapshot | null }

/** Where a session's base record lives: `{endpoint}|{sessionId}`; its pages' outboxes add `#{clientId}`. */
export const sessionKeyOf = (endpoint: string, sessionId: string) => `${endpoint}|${sessionId}`

/** The key of one page's outbox record (`outboxKey(sessionKey, '')` is the prefix of them all). */
export const outboxKey = (sessionKey: string, clientId: string) => `${sessionKey}#${clientId}`

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null

/** The base record of `snapshot`. */
export const toBaseRecord = (snapshot: SessionSnapshot): BaseRecord => ({
  format: CACHE_FORMAT,
  savedAt: Date.now(),
  version: snapshot.version,
  snapshot: JSON.stringify(snapshot),
})

/** The version of a base record this version wrote, else undefined. */
export const baseVersion = (value: unknown): number | undefined =>
  isObject(value) && value.format === CACHE_FORMAT && typeof value.version === 'number' ? value.version : undefined

/** The snapshot of a base record this version wrote, else undefined (absent, corrupt, another format). */
export function readBase(value: unknown): SessionSnapshot | undefined {
  if (baseVersion(value) === undefined || typeof (value as BaseRecord).snapshot !== 'string') return undefined
  try {
    const base: unknown = JSON.parse((value as BaseRecord).snapshot)
    return isObject(base) && typeof base.version === 'number' && isObject(base.variables) ? (base as unknown as SessionSnapshot) : undefined
  } catch {
    return undefined
  }
}

/** The outbox record when it is one this version can read (format 3, or 2), else undefined (corrupt, older). */
export function readOutbox(value: unknown): ReadOutbox | undefined {
  if (!isObject(value) || (value.format !== CACHE_FORMAT && value.format !== 2)) return undefined
  const record = value as Partial<ReadOutbox>
  if (typeof record.clientId !== 'string' || typeof record.nextSeq !== 'number' || typeof record.savedAt !== 'number') return undefined
  if (!isObject(record.pending) || !Array.isArray(record.pending.deleted) || !isObject(record.pending.variables)) return undefined
  if (record.base != null && (!isObject(record.base) || typeof record.base.version !== 'number')) return undefined
  if (
    !Array.isArray(record.queue) ||
    !record.queue.every((patch: unknown) => isObject(patch) && typeof patch.seq === 'number' && typeof patch.clientId === 'string')
  )
    return undefined
  return record as ReadOutbox
}

export interface CacheWriter {
  /** Write soon: many calls within `delayMs` become one write. */
  schedule(): void
  /** Write now (and wait for it), unless nothing was scheduled since the last write. */
  flush(this: void): Promise<void>
  /** Cancels a scheduled write. */
  cancel(): void
}

/**
 * Coalesces cache writes. `prepare` runs when the write starts and returns the write to make;
 * writes run one after another, so the last one stored is the newest. `onResult` hears whether
 * each write reached the storage.
 */
export function createCacheWriter(prepare: () => () => Promise<void>, onResult: (ok: boolean) => void, delayMs = 100): CacheWriter {
  let timer: ReturnType<typeof setTimeout> | undefined
  let dirty = false
  let chain: Promise<void> = Promise.resolve()

  const cancel = () => {
    clearTimeout(timer)
    timer = undefined
  }
  const flush = () => {
    cancel()
    if (!dirty) return chain
    dirty = false
    const write = prepare()
    chain = chain.then(() =>
      write().then(
        () => onResult(true),
        () => onResult(false),
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
    cancel,
  }
}
