import { sessionFrom } from '../shared/delta.js'
import type { RunDelta, RunRecord, SessionDelta, SessionSnapshot } from '../shared/protocol.js'
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
      /** Stopped (read after an await: the types cannot see it change). */
      const stopped = () => abort.signal.aborted
      void (async () => {
        let attempt = 0
        while (!abort.signal.aborted) {
          // One connection; given up when a delta does not fit what the stream sent before.
          const connection = new AbortController()
          const stop = () => connection.abort()
          abort.signal.addEventListener('abort', stop)
          try {
            // The snapshot the stream's next delta applies to: the page's base, then each one the stream made.
            let last = session.base()
            const response = await session.events(last, connection.signal)
            attempt = 0
            session.feed({ connected: true })
            await readEvents(response.body!, (event, data) => {
              if (event === 'snapshot' || event === 'delta') {
                const body = JSON.parse(data) as SessionSnapshot | SessionDelta
                const next = sessionFrom(last, body)
                // Not for what the stream holds: never merged; the stream starts again from the page's base.
                if (!next) throw new Error('A delta for another version than the one held')
                last = next
                session.receive(next)
                session.feed({ version: next.version })
              } else if (event === 'run' && !session.receiveRun(JSON.parse(data) as RunRecord | RunDelta)) {
                throw new Error('A run delta for a run not held')
              }
            })
            session.feed({ connected: false })
          } catch (error) {
            // Dropped, refused, offline, or a change that did not fit: try again after a backoff.
            session.feed(stopped() ? { connected: false } : { connected: false, error: String((error as Error | null)?.message ?? error) })
          } finally {
            abort.signal.removeEventListener('abort', stop)
            connection.abort()
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
