import { http } from 'msw'
import { setupServer } from 'msw/node'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { sessionHandlers } from '../src/msw.js'
import { memoryStore, type SessionHandlerOptions, type SessionStore, type Steps } from '../src/server/index.js'

export const ENDPOINT = 'http://localhost/api/session'

interface RecordedRequest {
  method: string
  path: string
  body: unknown
}

/**
 * One msw server for a test file, answering with the real handler over a memory store that
 * each test gets fresh (`ctx.store`). Every request is recorded in `ctx.requests`.
 */
export function setupMockServer(steps: Steps = {}, options: Partial<SessionHandlerOptions> = {}) {
  const ctx = { store: memoryStore(), requests: [] as RecordedRequest[], steps }
  const server = setupServer()
  const reset = () => {
    ctx.store = memoryStore()
    ctx.requests = []
    server.resetHandlers(...sessionHandlers({ ...options, store: proxyStore(() => ctx.store), steps: ctx.steps, onError: () => {} }))
  }
  server.events.on('request:start', async ({ request }) => {
    // Recorded in arrival order; the body is filled in once read.
    const entry: RecordedRequest = { method: request.method, path: new URL(request.url).pathname, body: undefined }
    ctx.requests.push(entry)
    const text = request.method === 'GET' ? '' : await request.clone().text()
    entry.body = text ? JSON.parse(text) : undefined
  })
  beforeAll(() => {
    // msw 3 calls it onUnhandledFrame, msw 2 (the oldest-peers project) onUnhandledRequest.
    server.listen({ onUnhandledFrame: 'error', onUnhandledRequest: 'error' } as Parameters<typeof server.listen>[0])
    reset()
  })
  afterEach(reset)
  afterAll(() => server.close())
  return Object.assign(ctx, { server, posts: () => ctx.requests.filter((r) => r.method === 'POST') })
}

/** A store that forwards every call to whichever store the current test uses. */
function proxyStore(current: () => SessionStore): SessionStore {
  return new Proxy({} as SessionStore, {
    get: (_, name) => {
      const store = current()
      const member: unknown = Reflect.get(store, name)
      return typeof member === 'function' ? member.bind(store) : member
    },
  })
}

/** Holds the next POST to `url` until `gate` opens, then lets the real handler answer it (a slow server, one request). */
export function holdNextPost(url: string, gate: Promise<unknown>) {
  return http.post(
    url,
    async () => {
      await gate
      return undefined // fall through to the real handler
    },
    { once: true },
  )
}
