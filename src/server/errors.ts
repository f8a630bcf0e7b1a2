import type { ErrorBody, ProtocolErrorCode } from '../shared/protocol.js'
import { lightResponse } from './light-response.js'

/** The HTTP status of each error code (docs/protocol.md, "Errors"); `exists` is the stores' own (`create`). */
const STATUS_OF: Record<ProtocolErrorCode | 'internal_error' | 'exists', number> = {
  bad_request: 400,
  invalid_json: 400,
  invalid_patch: 400,
  invalid_key: 400,
  invalid_session_id: 400,
  invalid_run: 400,
  unauthenticated: 401,
  forbidden_origin: 403,
  not_found: 404,
  unknown_step: 404,
  method_not_allowed: 405,
  exists: 409,
  run_in_progress: 409,
  schema_mismatch: 409,
  too_large: 413,
  unsupported_media_type: 415,
  step_failed: 500,
  internal_error: 500,
  unavailable: 503,
}

export type ServerErrorCode = keyof typeof STATUS_OF

/**
 * An error that carries its protocol response. Stores and the handler throw it; the handler
 * turns it into `{ "error": { code, message } }` with the code's status.
 */
export class SessionProtocolError extends Error {
  override name = 'SessionProtocolError'
  readonly status: number
  constructor(
    readonly code: ServerErrorCode,
    message: string,
    /** With `method_not_allowed`: the methods the resource has, for the `Allow` header. */
    readonly allow?: readonly string[],
  ) {
    super(message)
    this.status = STATUS_OF[code]
  }
}

/** 409 `schema_mismatch`: the request's schema version is one this server cannot take, or the session is stored at a newer one. */
export class SchemaMismatchError extends SessionProtocolError {
  constructor(
    message: string,
    /** The server's schema version, or the session's when it is stored at a newer one: the answer's body says it. */
    readonly schemaVersion: number,
  ) {
    super('schema_mismatch', message)
  }
}

const JSON_HEADERS = { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' }

export function jsonResponse(body: unknown, status = 200): Response {
  return jsonTextResponse(JSON.stringify(body), status)
}

/** A response whose body is JSON text already. */
export function jsonTextResponse(text: string, status = 200, headers?: Readonly<Record<string, string>>): Response {
  return lightResponse(text, status, headers ? { ...JSON_HEADERS, ...headers } : JSON_HEADERS)
}

/** Seconds a client should wait before retrying a `503 unavailable`. */
const RETRY_AFTER_SECONDS = 1

export function errorResponse(error: SessionProtocolError): Response {
  const body = { error: { code: error.code, message: error.message } } as ErrorBody
  if (error instanceof SchemaMismatchError) body.error.schemaVersion = error.schemaVersion
  if (error.code === 'unavailable')
    return lightResponse(JSON.stringify(body), error.status, { ...JSON_HEADERS, 'retry-after': String(RETRY_AFTER_SECONDS) })
  if (error.allow) return lightResponse(JSON.stringify(body), error.status, { ...JSON_HEADERS, allow: error.allow.join(', ') })
  return jsonResponse(body, error.status)
}
