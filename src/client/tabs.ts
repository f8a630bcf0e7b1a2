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
export function holdPageLock(locks: PageLocks | null, clientId: string): { release: () => void } {
  let release = () => {}
  if (locks) {
    const held = new Promise<void>((resolve) => (release = resolve))
    void locks.request(LOCK_PREFIX + clientId, () => held).catch(() => {})
  }
  return { release: () => release() }
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
): { base: SessionSnapshot | null; patches: QueuedPatch[]; claimed: string[] } {
  let base: SessionSnapshot | null = null
  const patches: QueuedPatch[] = []
  const claimed: string[] = []
  for (const { key, record } of records) {
    if (record.clientId === ownClientId) continue
    if (record.base && (!base || record.base.version > base.version)) base = record.base
    if (alive.has(record.clientId)) continue
    for (const body of record.queue) patches.push({ body, changes: fromPatchBody(body), ticket: nextTicket() })
    const left = fromPatchBody(record.pending)
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
  return { base, patches, claimed }
}
