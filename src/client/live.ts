import type { SessionSnapshot } from '../shared/protocol.js'
import { backoff } from './backoff.js'
import type { Transport } from './transport.js'

export interface LiveOptions {
  transport: Transport
  sessionId: string
  /** The version the client has: the stream starts after it (catch-up by version). */
  since: () => number
  onSnapshot: (snapshot: SessionSnapshot) => void
  retry: { baseMs: number; maxMs: number }
}

/**
 * Follows the session's change stream: each snapshot the server sends is handed to
 * `onSnapshot`. Reads the stream with fetch (so credentials in `headers` work, unlike
 * EventSource), reconnects with capped exponential backoff and jitter, and resumes after the
 * version the client already has.
 */
export function followChanges(options: LiveOptions): { stop: () => void } {
  const abort = new AbortController()
  void (async () => {
    let attempt = 0
    while (!abort.signal.aborted) {
      try {
        const response = await options.transport.events(options.sessionId, options.since(), abort.signal)
        attempt = 0
        await readEvents(response.body!, (event, data) => {
          if (event === 'snapshot') options.onSnapshot(JSON.parse(data) as SessionSnapshot)
        })
      } catch {
        // Dropped, refused or offline: try again after a backoff.
      }
      if (abort.signal.aborted) break
      await new Promise((resolve) => setTimeout(resolve, backoff(++attempt, options.retry)))
    }
  })()
  return { stop: () => abort.abort() }
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
