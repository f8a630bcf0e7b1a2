import type { PageLocks } from '../src/client/tabs.js'

/** Web Locks for tabs simulated in one Node process: a lock is held while its callback's promise runs. */
export function fakeLocks(): PageLocks {
  const held = new Set<string>()
  return {
    async request(name: string, callback: (lock: Lock | null) => unknown) {
      held.add(name)
      try {
        return await callback({ name, mode: 'exclusive' })
      } finally {
        held.delete(name)
      }
    },
    async query() {
      return { held: [...held].map((name) => ({ name, mode: 'exclusive' as const, clientId: 'tab' })), pending: [] }
    },
  } as PageLocks
}
