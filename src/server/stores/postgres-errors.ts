import { SessionProtocolError } from '../errors.js'

/** SQLSTATEs that mean "the database is not there right now", not "the query is wrong". */
const UNAVAILABLE_STATES = new Set([
  '57P01', // admin_shutdown: the server is restarting or stopping
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now: starting up, or in recovery
  '53300', // too_many_connections
  '55000', // object_not_in_prerequisite_state: "database … is not currently accepting connections"
])
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN'])

/** Whether `error` says the database could not be reached or dropped the connection. */
export function isConnectionError(error: unknown): boolean {
  if (error instanceof AggregateError) return error.errors.some(isConnectionError)
  if (!(error instanceof Error)) return false
  const code = (error as { code?: unknown }).code
  if (typeof code === 'string' && (code.startsWith('08') || UNAVAILABLE_STATES.has(code) || NETWORK_CODES.has(code))) return true
  // pg's own errors for a connection that ended or never opened carry no code.
  return /Connection terminated|timeout exceeded when trying to connect|is not queryable|connection error/i.test(error.message)
}

/** Awaits `work`; a lost database becomes `unavailable` (503, retried by clients), other errors pass. */
export async function asUnavailable<T>(work: Promise<T>): Promise<T> {
  try {
    return await work
  } catch (error) {
    if (isConnectionError(error))
      throw new SessionProtocolError('unavailable', 'The session database cannot be reached right now; try again')
    throw error
  }
}

/** `host:port, database "name"` of a connection URL, without its password. */
export function describeTarget(url: string): string {
  try {
    const parsed = new URL(url)
    const database = decodeURIComponent(parsed.pathname.replace(/^\//, '')) || parsed.username || 'postgres'
    return `${parsed.hostname || 'localhost'}:${parsed.port || '5432'}, database "${database}"`
  } catch {
    return 'the configured PostgreSQL server'
  }
}
