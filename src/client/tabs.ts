import type { SessionSnapshot } from '../shared/protocol.js'
import type { ReadOutbox } from './cache.js'
import { fromPatchBody } from './changes.js'
import type { QueuedPatch } from './view.js'

/**
 * The part of the Web Locks API the client uses to tell a live page from a closed one. Pass
 * `null` to say there is none (then every other page's left-overs are taken as a closed tab's).
 */
export type PageLocks = Pick<LockManager, 'request' | 'query'>

const LOCK_PREFIX = 'workflow-session:page:'

export function defaultLocks(): PageLocks | null {
  return (globalThis as { navigator?: { locks?: PageLocks } }).navigator?.locks ?? null
}

/** Holds a lock named after this page's client id until `release()`: while held, the page is alive. */
export function holdPageLock(locks: PageLocks | null, clientId: string): { release: () => void; isHeld: () => boolean } {
  let release = () => {}
  let held = false
  if (locks) {
    const until = new Promise<void>((resolve) => (release = resolve))
    void locks
      .request(LOCK_PREFIX + clientId, () => {
        held = true
        return until
      })
      .catch(() => {})
      .finally(() => (held = false))
  }
  return { release: () => release(), isHeld: () => held }
}

/** Client ids of the pages that are alive now (hold their lock). */
export async function livePages(locks: PageLocks | null): Promise<Set<string>> {
  if (!locks) return new Set()
  const { held = [] } = await locks.query()
  return new Set(
    held
      .map((lock) => lock.name ?? '')
      .filter((name) => name.startsWith(LOCK_PREFIX))
      .map((name) => name.slice(LOCK_PREFIX.length)),
  )
}

/** What another page of the session left on the device, as the page starting found it. */
export interface LeftByPage {
  clientId: string
  /** Its unconfirmed patches (its pending changes count as one). */
  patches: number
  /** Taken over by this page (that page was closed), or left alone (it is still open). */
  takenOver: boolean
}

/**
 * What this page takes over from the outbox records of other pages of its session: the unconfirmed
 * changes of pages that are gone (not `alive`), and the newest base a format-2 record carried. Their patches keep their own
 * client id and seq, and their pending changes go out as their next seq, so whatever of it a
 * keepalive request already delivered is not applied again.
 */
export function takeOver(
  records: Array<{ key: string; record: ReadOutbox }>,
  ownClientId: string,
  alive: Set<string>,
  nextTicket: () => number,
): { base: SessionSnapshot | null; patches: QueuedPatch[]; claimed: string[]; left: LeftByPage[] } {
  let base: SessionSnapshot | null = null
  const patches: QueuedPatch[] = []
  const claimed: string[] = []
  const leftByPages: LeftByPage[] = []
  for (const { key, record } of records) {
    if (record.clientId === ownClientId) continue
    if (record.base && (!base || record.base.version > base.version)) base = record.base
    const left = fromPatchBody(record.pending)
    leftByPages.push({
      clientId: record.clientId,
      patches: record.queue.length + (left.size > 0 ? 1 : 0),
      takenOver: !alive.has(record.clientId),
    })
    if (alive.has(record.clientId)) continue
    for (const body of record.queue) patches.push({ body, changes: fromPatchBody(body), ticket: nextTicket() })
    if (left.size > 0)
      patches.push({
        body: {
          clientId: record.clientId,
          seq: record.nextSeq,
          ...record.pending,
          ...(record.schemaVersion && { schemaVersion: record.schemaVersion }),
        },
        changes: left,
        ticket: nextTicket(),
      })
    claimed.push(key)
  }
  return { base, patches, claimed, left: leftByPages }
}
