import { http, type HttpHandler } from 'msw'
import { createSessionHandler, type SessionHandlerOptions } from './server/handler.js'
import { memoryStore } from './server/stores/memory.js'
import { DEFAULT_BASE, withoutTrailingSlashes } from './shared/protocol.js'

export type SessionHandlersOptions = Partial<SessionHandlerOptions>

/**
 * msw request handlers that answer the session endpoints with the package's real handler
 * (over an in-memory store unless you pass one): tests, Storybook and prototypes mock the
 * network without a second, hand-written server.
 *
 * @example
 * import { setupServer } from 'msw/node'
 * const store = memoryStore()
 * const server = setupServer(...sessionHandlers({ store, steps: { register: () => ({ output: 'ok' }) } }))
 */
export function sessionHandlers(options: SessionHandlersOptions = {}): HttpHandler[] {
  const base = withoutTrailingSlashes(options.base ?? DEFAULT_BASE)
  const handler = createSessionHandler({ ...options, base, store: options.store ?? memoryStore() })
  const path = new RegExp(`^[^?#]*${escapeRegExp(base)}(?:/[^?#]*)?(?:[?#].*)?$`)
  return [http.all(path, ({ request }) => handler(request))]
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
}

export { memoryStore } from './server/stores/memory.js'
