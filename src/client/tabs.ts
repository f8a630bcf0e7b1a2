import type { SessionSnapshot } from '../shared/protocol.js'

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
  return new Set(held.map((lock) => lock.name ?? '').filter((name) => name.startsWith(LOCK_PREFIX)).map((name) => name.slice(LOCK_PREFIX.length)))
}

/**
 * Tells the other tabs of this session about acknowledged snapshots, and hears theirs. Each tab
 * sends its own changes; only confirmed snapshots travel here, and a tab takes one only when it
 * is newer than what it has, so nothing echoes back and forth.
 */
export function openTabChannel(name: string, onSnapshot: (snapshot: SessionSnapshot) => void): { post: (snapshot: SessionSnapshot) => void; close: () => void } {
  const Channel = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel
  if (!Channel) return { post: () => {}, close: () => {} }
  const channel = new Channel(name)
  ;(channel as { unref?: () => void }).unref?.() // Node: do not keep the process alive
  channel.onmessage = (event: MessageEvent) => {
    const snapshot = (event.data as { snapshot?: SessionSnapshot } | null)?.snapshot
    if (snapshot && typeof snapshot.version === 'number' && typeof snapshot.variables === 'object') onSnapshot(snapshot)
  }
  return { post: (snapshot) => channel.postMessage({ snapshot }), close: () => channel.close() }
}
