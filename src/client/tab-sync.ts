import type { SessionSnapshot } from '../shared/protocol.js'
import type { SessionPlugin } from './plugins.js'

/**
 * Open tabs of one session show each other's confirmed changes at once (BroadcastChannel).
 * Each tab sends its own changes; only confirmed snapshots travel between tabs, and a tab takes
 * one only when it is newer than what it has, so nothing echoes back and forth. Without it, a tab
 * sees the others' changes when it next fetches the session (on focus, on reconnect).
 *
 * @example
 * <SessionProvider plugins={[tabSync()]}>
 */
export function tabSync(): SessionPlugin {
  return {
    name: 'tabSync',
    start(session) {
      const Channel = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel
      if (!Channel) return () => {}
      const channel = new Channel(`workflow-session|${session.sessionKey}`)
      ;(channel as { unref?: () => void }).unref?.() // Node: do not keep the process alive
      channel.onmessage = (event: MessageEvent) => {
        const snapshot = (event.data as { snapshot?: SessionSnapshot } | null)?.snapshot
        if (snapshot && typeof snapshot.version === 'number' && typeof snapshot.variables === 'object') session.receive(snapshot)
      }
      const off = session.onConfirmed((snapshot) => channel.postMessage({ snapshot }))
      return () => {
        off()
        channel.close()
      }
    },
  }
}
