import type { JsonValue, SessionSnapshot } from '../shared/protocol.js'
import {
  baseVersion,
  CACHE_FORMAT,
  createCacheWriter,
  indexedDbLocalCopy,
  type LocalCopyStorage,
  memoryLocalCopy,
  outboxKey,
  type OutboxRecord,
  readBase,
  type ReadOutbox,
  readOutbox,
  toBaseRecord,
} from './cache.js'
import { type LeftByPage, livePages, type PageLocks, takeOver } from './tabs.js'
import type { QueuedPatch } from './view.js'

export interface LocalCopy {
  /** Saves soon what changed (the outbox when `outbox`; the base whenever it is a new one); many calls become one write. */
  save(outbox: boolean): void
  /** Writes now what changed since the last write, and waits for it. */
  flush(): Promise<void>
  /** The session was deleted from here: nothing of it is written any more. */
  discard(): void
  /** Whether writes reach the device (false: the storage refused, kept in memory only). */
  isPersistent(): boolean
  /** Whether IndexedDB (or the app's storage) refused and the copy is kept in memory only. */
  isFallback(): boolean
  /**
   * Reads the session: its base, and the unconfirmed patches of pages that are gone (now this
   * page's); `left` says what each other page left (taken over or not).
   */
  read(nextTicket: () => number): Promise<{ base: SessionSnapshot | null; patches: QueuedPatch[]; left: LeftByPage[] }>
  /**
   * In a browser, the read begun as the copy was made: it resolves with the base when that is
   * all there is to read (no page left changes), so the values can show before `start()`; else
   * with undefined, and `read()` does the rest.
   */
  readonly baseOnly: Promise<SessionSnapshot | null | undefined>
  /** Deletes the session's records: its base and every page's outbox. */
  forget(sessionKey: string): Promise<void>
  /** The runs started from this device whose start was not yet answered or whose end was not yet seen. */
  runStarts(): Promise<RunStart[]>
  /** Keeps a run's start (before its request leaves), so a reload starts it again under the same id. */
  rememberRun(start: RunStart): Promise<void>
  /** The run's end was seen (or it joined another): its start is no longer kept. */
  forgetRun(runId: string): Promise<void>
}

/** A run's start as the local copy keeps it. */
export interface RunStart {
  runId: string
  step: string
  input?: JsonValue
}

/** The key of the runs this device started in a session (never an outbox's: `#` is theirs). */
const runsKey = (sessionKey: string) => `${sessionKey}!runs`

const runStartsOf = (value: unknown): RunStart[] => (Array.isArray(value) ? (value as RunStart[]) : [])

/** What this page's records hold now. */
export type LocalContent = Pick<OutboxRecord, 'queue' | 'pending' | 'nextSeq' | 'schemaVersion'> & { base: SessionSnapshot | null }

/** Clients stopped in this page (realm): their records may have changed after another client began reading. */
const stoppedInThisPage = new Set<string>()

/**
 * This page's copy of the session on the device, in two kinds of records: the session's base
 * (the last confirmed snapshot, shared by its pages) and one outbox per page holding its
 * unconfirmed changes while it has some (so tabs never overwrite each other's changes). A reload
 * with nothing pending reads the base and a list of keys; only when some page left changes are
 * the outboxes read and the live pages asked for. Falls back to memory when IndexedDB refuses.
 * The reading starts as the copy is made, so it overlaps the first render.
 */
export function createLocalCopy(
  options: { storage?: LocalCopyStorage; wrap: (storage: LocalCopyStorage) => LocalCopyStorage },
  sessionKey: string,
  clientId: string,
  locks: PageLocks | null,
  content: () => LocalContent,
  /** A write ended, reaching the device (`ok`) or not (`isPersistent()` may have changed). */
  onWritten: (ok: boolean) => void,
): LocalCopy {
  const fallback = memoryLocalCopy()
  let storage = options.wrap(options.storage ?? indexedDbLocalCopy())
  const ownKey = outboxKey(sessionKey, clientId)
  const prefix = outboxKey(sessionKey, '')
  /** The outbox keys of other pages of this session. */
  const othersOf = (keys: string[]) => keys.filter((key) => typeof key === 'string' && key.startsWith(prefix) && key !== ownKey)
  /** Whether the first read found run starts kept (else `runStarts()` reads nothing). */
  let runsKept = true
  const beginRead = async (): Promise<readonly [SessionSnapshot | undefined, string[]]> => {
    const [value, keys] = storage.getWithKeys
      ? await storage.getWithKeys(sessionKey)
      : await Promise.all([storage.get(sessionKey), storage.keys()])
    runsKept = keys.includes(runsKey(sessionKey))
    return [readBase(value), othersOf(keys)]
  }
  // In a browser, start reading now: start() only applies it. (The read changes nothing, so a
  // client made and dropped, as StrictMode does, costs only the read.)
  const preloaded = typeof window !== 'undefined' ? beginRead() : undefined
  const baseOnly = (preloaded ?? Promise.reject(new Error('not preloaded'))).then(
    ([base = null, others]) => {
      if (others.length > 0 || stoppedInThisPage.size > 0) return undefined
      baseWritten = base // it is on the device: showing it writes nothing
      return base
    },
    () => undefined,
  )

  let persistent = true
  let discarded = false
  let outboxChanged = false
  /** Whether this page's outbox is on the device, and which base is (by identity). */
  let outboxWritten = false
  let baseWritten: SessionSnapshot | null = null
  /** Records of closed pages this page took over; deleted once our own outbox holds their changes. */
  const claimed: string[] = []

  const writer = createCacheWriter(
    () => {
      const { base, queue, pending, nextSeq, schemaVersion } = content()
      const target = storage // may become the memory fallback later
      const writes: Array<() => Promise<void>> = []
      if (base && base !== baseWritten) {
        baseWritten = base
        // Another tab may have written a newer base meanwhile: an older one never replaces it.
        const record = toBaseRecord(base)
        const notOlder = (stored: unknown) => (baseVersion(stored) ?? -1) <= base.version
        writes.push(() =>
          target.update
            ? target.update(sessionKey, (stored) => (notOlder(stored) ? record : stored))
            : target.get(sessionKey).then((stored) => (notOlder(stored) ? target.set(sessionKey, record) : undefined)),
        )
      }
      if (outboxChanged) {
        outboxChanged = false
        const empty = queue.length === 0 && pending.deleted.length === 0 && Object.keys(pending.variables).length === 0
        if (!empty) {
          const record: OutboxRecord = { format: CACHE_FORMAT, clientId, savedAt: Date.now(), queue, pending, nextSeq }
          if (schemaVersion !== undefined) record.schemaVersion = schemaVersion
          writes.push(() => target.set(ownKey, record))
        } else if (outboxWritten) writes.push(() => target.del(ownKey))
        outboxWritten = !empty
      }
      const taken = claimed.splice(0)
      return async () => {
        try {
          await Promise.all(writes.map((write) => write()))
        } catch (error) {
          // Written again with the next change.
          baseWritten = null
          outboxChanged = true
          claimed.push(...taken)
          throw error
        }
        for (const key of taken) void target.del(key).catch(() => {})
      }
    },
    (ok) => {
      persistent = ok && storage !== fallback
      onWritten(persistent)
    },
  )

  async function readOutboxes(keys: string[]): Promise<Array<{ key: string; record: ReadOutbox }>> {
    const found: Array<{ key: string; record: ReadOutbox }> = []
    for (const key of keys) {
      const record = readOutbox(await storage.get(key))
      if (record) found.push({ key, record })
      else await storage.del(key).catch(() => {}) // unreadable (corrupt, an older format): dropped
    }
    return found.sort((a, b) => a.record.savedAt - b.record.savedAt)
  }

  /** Changes the kept run starts in one step where the storage can (tabs start runs too). */
  async function changeRuns(change: (runs: RunStart[]) => RunStart[]): Promise<void> {
    const key = runsKey(sessionKey)
    try {
      if (storage.update) await storage.update(key, (old) => change(runStartsOf(old)))
      else await storage.set(key, change(runStartsOf(await storage.get(key))))
    } catch {
      // Kept in memory only (the storage refused): a reload will not start it again, the run itself goes on.
    }
  }

  return {
    baseOnly,
    save(outbox) {
      if (discarded) return
      if (outbox) outboxChanged = true
      writer.schedule()
    },
    flush: writer.flush,
    discard() {
      discarded = true
      writer.cancel()
    },
    isPersistent: () => persistent,
    isFallback: () => storage === fallback,
    async read(nextTicket) {
      let read: readonly [SessionSnapshot | undefined, string[]]
      try {
        read = await (preloaded ?? beginRead())
        // A client stopped in this page may have written its last changes after the preload: list again.
        if (preloaded && [...stoppedInThisPage].some((id) => id !== clientId)) read = [read[0], othersOf(await storage.keys())]
      } catch {
        // IndexedDB refused (private mode, blocked, broken): keep going, in memory only.
        storage = fallback
        persistent = false
        return { base: null, patches: [], left: [] }
      }
      const [base = null, others] = read
      baseWritten = base
      // The common reload: no page left changes, so neither outboxes nor locks are read.
      if (others.length === 0) return { base, patches: [], left: [] }
      const [records, alive] = await Promise.all([readOutboxes(others).catch(() => []), livePages(locks).catch(() => new Set<string>())])
      const taken = takeOver(records, clientId, alive, nextTicket)
      if (taken.claimed.length > 0) {
        claimed.push(...taken.claimed)
        outboxChanged = true
        writer.schedule()
      }
      return {
        base: taken.base && (!base || taken.base.version > base.version) ? taken.base : base,
        patches: taken.patches,
        left: taken.left,
      }
    },
    // The common reload has none: the keys the first read listed say so, and nothing more is read.
    runStarts: async () => (runsKept ? runStartsOf(await storage.get(runsKey(sessionKey)).catch(() => [])) : []),
    rememberRun: (start) => ((runsKept = true), changeRuns((runs) => [...runs.filter((run) => run.runId !== start.runId), start])),
    forgetRun: (runId) => changeRuns((runs) => runs.filter((run) => run.runId !== runId)),
    async forget(key) {
      const outboxes = outboxKey(key, '')
      await storage.del(runsKey(key)).catch(() => {})
      await storage.del(key).catch(() => {})
      for (const stored of await storage.keys().catch(() => [] as string[])) {
        if (typeof stored === 'string' && stored.startsWith(outboxes)) await storage.del(stored).catch(() => {})
      }
    },
  }
}

/** Marks a client of this page as stopped: a client made after may take over what it left. */
export function stoppedHere(clientId: string): void {
  stoppedInThisPage.add(clientId)
}
