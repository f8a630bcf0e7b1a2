import type { RunRecord, SessionSnapshot } from '../shared/protocol.js'
import { backoff } from './backoff.js'
import { readEvents } from './event-stream.js'
import type { SessionPlugin } from './plugins.js'

/**
 * Follows the server's change stream: changes made elsewhere (other devices, other servers,
 * steps) appear without a reload, and so do the runs of the session (started, progress, ended). Reads the stream with fetch (so credentials in `headers` work,
 * unlike EventSource), reconnects with capped exponential backoff and jitter, and resumes after
 * the version the page already has.
 *
 * @example
 * <SessionProvider plugins={[liveUpdates()]}>
 */
export function liveUpdates(): SessionPlugin {
  return {
    name: 'liveUpdates',
    start(session) {
      const abort = new AbortController()
      void (async () => {
        let attempt = 0
        while (!abort.signal.aborted) {
          try {
            const response = await session.events(session.version(), abort.signal)
            attempt = 0
            await readEvents(response.body!, (event, data) => {
              if (event === 'snapshot') session.receive(JSON.parse(data) as SessionSnapshot)
              else if (event === 'run') session.receiveRun(JSON.parse(data) as RunRecord)
            })
          } catch {
            // Dropped, refused or offline: try again after a backoff.
          }
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- aborted while awaiting, which the types cannot see
          if (abort.signal.aborted) break
          await new Promise((resolve) => setTimeout(resolve, backoff(++attempt, session.retry)))
        }
      })()
      return () => abort.abort()
    },
  }
}
