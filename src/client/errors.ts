import type { ProtocolErrorCode } from '../shared/protocol.js'

/** Why a request or a flush failed. Protocol codes come from the server; the rest are local. */
export type SessionErrorCode =
  | ProtocolErrorCode
  | 'internal_error'
  | 'network_error'
  | 'timeout'
  | 'offline'
  | 'http_error'
  | 'flush_timeout'
  // How a run ended without succeeding (`step_failed` is the protocol's).
  | 'cancelled'
  | 'timed_out'
  | 'lost'

/**
 * A failed request, flush or run. `retryable` errors (network, timeout, 5xx, 408, 429) are
 * retried by the client; the others are final for the changes they carried.
 *
 * @example
 * try { await client.flush() } catch (error) {
 *   if (error instanceof SessionError && error.code === 'offline') showBanner('Offline: changes kept')
 * }
 */
export class SessionError extends Error {
  override name = 'SessionError'
  constructor(
    readonly code: SessionErrorCode,
    message: string,
    /** The HTTP status, when a server answered. */
    readonly status?: number,
    readonly retryable = false,
    /** With `schema_mismatch`: the schema version the server is at (or the session, stored at a newer one). */
    readonly schemaVersion?: number,
  ) {
    super(message)
  }
}

/**
 * A value or name that a session variable cannot hold. Thrown by `set` before anything changes.
 *
 * @example
 * client.set('when', new Date()) // throws: setVariable("when"): a Date is not JSON; store date.toISOString()
 */
export class SessionValueError extends TypeError {
  override name = 'SessionValueError'
  constructor(
    readonly key: string,
    problem: string,
  ) {
    super(`setVariable(${JSON.stringify(key)}): ${problem}`)
  }
}

/** Whether a failed request is worth sending again unchanged. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || status === 408 || status === 429
}

/** Any failure as a SessionError; what is not one already is a retryable network error. */
export function asSessionError(error: unknown): SessionError {
  return error instanceof SessionError
    ? error
    : new SessionError('network_error', String((error as { message?: unknown } | null | undefined)?.message ?? error), undefined, true)
}
