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
  const reading = (async () => {
    const reader = response.body!.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    for (;;) {
      const { done, value } = await reader.read()
      if (done) return
      buffer += decoder.decode(value, { stream: true })
      let boundary: number
      while ((boundary = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, boundary)
        buffer = buffer.slice(boundary + 2)
        const field = (name: string) =>
          block
            .split('\n')
            .find((line) => line.startsWith(`${name}: `))
            ?.slice(name.length + 2)
        const data = field('data')
        if (data !== undefined)
          events.push({ event: field('event') ?? 'message', id: field('id'), data: JSON.parse(data), bytes: data.length })
      }
    }
  })().catch(() => {})
  return {
    status: response.status,
    events,
    close: async () => {
      abort.abort()
      await reading
    },
  }
}
