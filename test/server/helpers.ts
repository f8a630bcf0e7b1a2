import { readEvents } from '../../src/client/event-stream.js'
import { createSessionHandler, memoryStore, type SessionHandlerOptions, type SessionStore } from '../../src/server/index.js'

const ORIGIN = 'http://localhost'

export function setup(options: Partial<SessionHandlerOptions> = {}) {
  const store: SessionStore = options.store ?? memoryStore()
  const errors: unknown[] = []
  const logs: string[] = []
  const handler = createSessionHandler({ onError: (error) => errors.push(error), log: (line) => logs.push(line), ...options, store })
  const call = async (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { ...(body !== undefined && { 'content-type': 'application/json' }), ...headers } }
    if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body)
    const response = await handler(new Request(`${ORIGIN}${path}`, init))
    const text = await response.text()
    return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers }
  }
  return { store, handler, call, errors, logs }
}

export const ID = 'session-0001'

/** Opens a change stream over HTTP and collects its events (`event`, `id`, parsed `data`) until `close()`. */
export async function openEvents(url: string, headers: Record<string, string> = {}) {
  const abort = new AbortController()
  const response = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
  const events: Array<{ event: string; id: string | undefined; data: Record<string, unknown>; bytes: number }> = []
  const reading = readEvents(response.body!, (event, data, id) => {
    events.push({ event, id, data: JSON.parse(data) as Record<string, unknown>, bytes: data.length })
  }).catch(() => {})
  return {
    status: response.status,
    events,
    close: async () => {
      abort.abort()
      await reading
    },
  }
}

/** The text of a streamed response (a change stream through the handler, in process), read as far as a test needs. */
export function streamText(response: Response) {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
  let text = ''
  return {
    get text() {
      return text
    },
    /** Reads until `needle` has come. */
    async readUntil(needle: string) {
      while (!text.includes(needle)) text += (await reader.read()).value ?? ''
    },
  }
}
