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
