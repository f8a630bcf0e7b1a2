import { fileStore } from './file.js'
import { memoryStore } from './memory.js'
import type { SessionStore, StoreOptions } from './types.js'

/**
 * Opens the store a URL names — how a deployment picks its store from configuration:
 *
 * | URL | store |
 * |---|---|
 * | `memory:` | {@link memoryStore} |
 * | `file:DIR` | {@link fileStore} in DIR (relative to the working directory, or absolute) |
 * | `sqlite:PATH` | `sqliteStore` at PATH (`sqlite::memory:` for a private in-memory database) |
 * | `postgres://…`, `postgresql://…` | `postgresStore` (the URL is pg's connection string) |
 *
 * @example
 * const store = await openStore(process.env.SESSION_STORE ?? 'sqlite:.data/sessions.db', { ttlMs: 30 * 86400_000 })
 */
export async function openStore(url: string, options: StoreOptions = {}): Promise<SessionStore> {
  const colon = url.indexOf(':')
  const scheme = colon === -1 ? '' : url.slice(0, colon).toLowerCase()
  const rest = colon === -1 ? '' : url.slice(colon + 1)
  switch (scheme) {
    case 'memory':
      return memoryStore(options)
    case 'file':
      return fileStore(requirePath(url, rest.replace(/^\/\/(?=\/)/, '')), options)
    case 'sqlite': {
      const { sqliteStore } = await import('./sqlite.js')
      return sqliteStore(requirePath(url, rest.replace(/^\/\/(?=\/)/, '')), options)
    }
    case 'postgres':
    case 'postgresql': {
      const { postgresStore } = await import('./postgres.js')
      return postgresStore(url, options)
    }
    default:
      throw new Error(
        `openStore: cannot open "${url}". Use memory:, file:DIR, sqlite:PATH (for example sqlite:.data/sessions.db) or postgres://…`,
      )
  }
}

function requirePath(url: string, path: string): string {
  if (path === '') throw new Error(`openStore: "${url}" names no path, e.g. ${url}.data/sessions`)
  return path
}
