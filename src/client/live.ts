import type { SessionSnapshot } from '../shared/protocol.js'
import { backoff } from './backoff.js'
import type { SessionPlugin } from './plugins.js'

/**
 * Follows the server's change stream: changes made elsewhere (other devices, other servers,
 * steps) appear without a reload. Reads the stream with fetch (so credentials in `headers` work,
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

/** Parses a text/event-stream body, calling `onEvent(event, data)` per dispatched event. */
async function readEvents(body: ReadableStream<Uint8Array>, onEvent: (event: string, data: string) => void): Promise<void> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  for (;;) {
    const { done, value } = await reader.read()
    if (done) return
    buffer += decoder.decode(value, { stream: true })
    let boundary: number
    while ((boundary = buffer.search(/\r?\n\r?\n/)) !== -1) {
      const block = buffer.slice(0, boundary)
      buffer = buffer.slice(boundary).replace(/^\r?\n\r?\n/, '')
      let event = 'message'
      const data: string[] = []
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) event = line.slice(6).trim()
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
      }
      if (data.length > 0) onEvent(event, data.join('\n'))
    }
  }
}
