import type { JsonValue } from '../shared/protocol.js'
import { isPlainObject, isSessionId, jsonValueProblem } from '../shared/rules.js'
import { SessionProtocolError } from './errors.js'

/**
 * Reads a JSON body: 415 unless `application/json`, 413 past `maxBytes` (counted while reading,
 * so an oversized body is never buffered whole), 400 `invalid_json` when it does not parse.
 * An empty body reads as `undefined`; with `emptyNeedsNoType` (a run, an adoption) it may come
 * without a content type — but not with another one: a cross-site HTML form always sends one
 * (form-urlencoded, multipart or text/plain), so it can never run a step or adopt a session.
 */
export async function readJsonBody(request: Request, maxBytes: number, { emptyNeedsNoType = false } = {}): Promise<unknown> {
  const type = request.headers.get('content-type') ?? ''
  if (type.split(';')[0]!.trim().toLowerCase() !== 'application/json') {
    const mayBeEmpty = emptyNeedsNoType && type === '' && (request.headers.get('content-length') ?? '0') === '0'
    // Read no more than a byte: any byte at all makes it a body of the wrong type.
    if (
      !mayBeEmpty ||
      (await readBytes(request, 0).then(
        (bytes) => bytes.byteLength,
        () => 1,
      )) > 0
    ) {
      throw new SessionProtocolError('unsupported_media_type', 'Send the body as application/json')
    }
    return undefined
  }
  const declared = Number(request.headers.get('content-length') ?? NaN)
  if (declared > maxBytes) throw tooLarge(maxBytes)
  const text = decoder.decode(await readBytes(request, maxBytes))
  if (text.trim() === '') return undefined
  try {
    return JSON.parse(text)
  } catch {
    throw new SessionProtocolError('invalid_json', 'The body is not valid JSON')
  }
}

/** The body's bytes, counted while reading: 413 past `maxBytes`, so an oversized body is never buffered whole. */
async function readBytes(request: Request, maxBytes: number): Promise<Uint8Array> {
  // A request from the Node adapter reads its body straight from the socket (node-request.ts).
  const fromNode = (request as { [READ_BODY]?: (maxBytes: number) => Promise<Uint8Array> | undefined })[READ_BODY]?.(maxBytes)
  if (fromNode) return fromNode
  const chunks: Uint8Array[] = []
  let size = 0
  if (request.bodyUsed || request.body?.locked) {
    // A body parser or middleware read it first (Hono's c.req.json(), a logging middleware…).
    throw new Error(
      'The request body was read before the session handler: let no body parser or middleware read requests to the session endpoints, or hand the handler a fresh Request (request.clone() before reading)',
    )
  }
  if (request.body) {
    const reader = request.body.getReader()
    for (;;) {
      // A body that stops midway (the client went, or the server's request timeout cut it) is
      // the request's fault, not the server's: a 400, not an error to report.
      const { done, value } = await reader.read().catch(() => {
        throw new SessionProtocolError('bad_request', 'The request body ended before it was complete')
      })
      if (done) break
      size += value.byteLength
      if (size > maxBytes) {
        await reader.cancel().catch(() => {})
        throw tooLarge(maxBytes)
      }
      chunks.push(value)
    }
  }
  return concat(chunks, size)
}

const READ_BODY = Symbol.for('workflow-session.read-body')
const decoder = new TextDecoder()

function tooLarge(maxBytes: number): SessionProtocolError {
  return new SessionProtocolError('too_large', `The body is larger than ${maxBytes} bytes`)
}

function concat(chunks: Uint8Array[], size: number): Uint8Array {
  if (chunks.length === 1) return chunks[0]!
  const all = new Uint8Array(size)
  let at = 0
  for (const chunk of chunks) {
    all.set(chunk, at)
    at += chunk.byteLength
  }
  return all
}

/** Checks a run body: empty, or `{ "input": any JSON }`. Returns the input. */
export function parseRunInput(body: unknown): unknown {
  if (body === undefined) return undefined
  if (!isPlainObject(body)) throw new SessionProtocolError('invalid_patch', 'The run body must be a JSON object: { "input": … }')
  return body.input
}

/** Checks the body of a run's start: `{ "runId", "step", "input"? }` (input: any JSON within a variable's rules). */
export function parseRunStart(body: unknown): { runId: string; step: string; input: JsonValue | undefined; schemaVersion: number } {
  if (!isPlainObject(body)) throw new SessionProtocolError('invalid_run', 'The body must be a JSON object: { "runId", "step", "input" }')
  const { runId, step, input } = body
  if (!isSessionId(runId)) throw new SessionProtocolError('invalid_run', '"runId" must be 8 to 128 characters of A-Z a-z 0-9 _ -')
  if (typeof step !== 'string' || step === '') throw new SessionProtocolError('invalid_run', '"step" must be the name of a step')
  const problem = input === undefined ? null : jsonValueProblem(input)
  if (problem) throw new SessionProtocolError('invalid_patch', `"input" ${problem}`)
  return { runId, step, input: input as JsonValue | undefined, schemaVersion: schemaVersionOf(body, 'invalid_run') }
}

/**
 * A body's `schemaVersion`, the schema version the client writes in (docs/protocol.md, "Schema
 * versions"): absent is 1; anything but a whole number from 1 is 400 `code`.
 */
export function schemaVersionOf(body: unknown, code: 'invalid_patch' | 'invalid_run'): number {
  const value = isPlainObject(body) ? body.schemaVersion : undefined
  if (value === undefined) return 1
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1)
    throw new SessionProtocolError(code, '"schemaVersion" must be a whole number from 1')
  return value
}
