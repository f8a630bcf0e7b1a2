import {
  DEFAULT_BASE,
  type ErrorBody,
  type JsonValue,
  type RunAnswer,
  type RunRecord,
  type RunResponse,
  type SessionPatch,
  type SessionSnapshot,
  type SessionSummary,
  withoutTrailingSlashes,
} from '../shared/protocol.js'
import { isRetryableStatus, SessionError } from './errors.js'

export type HeadersOption = HeadersInit | (() => HeadersInit | Promise<HeadersInit>)

export interface TransportOptions {
  endpoint: string
  fetch?: typeof fetch
  headers?: HeadersOption
  /** A request not answered in this time fails with the retryable `timeout` error. */
  timeoutMs: number
}

export interface Transport {
  /** The stored session, or null when the server has none (404). */
  get(sessionId: string): Promise<SessionSnapshot | null>
  /** `signal` lets the caller give the request up (it then rejects; its answer, if any, is not used). */
  patch(sessionId: string, patch: SessionPatch, init?: { keepalive?: boolean; signal?: AbortSignal }): Promise<SessionSnapshot>
  run<Output>(sessionId: string, step: string, input: JsonValue | undefined): Promise<RunResponse<Output>>
  /** The caller's sessions, newest first. */
  list(): Promise<SessionSummary[]>
  /** Makes an ownerless session the signed-in caller's (`POST {base}/{id}/adopt`). */
  adopt(sessionId: string): Promise<SessionSnapshot>
  /** Deletes a session; resolves also when it did not exist. */
  remove(sessionId: string): Promise<void>
  /** Opens the change stream (`GET {base}/{id}/events`), from versions after `since`. No timeout: it stays open. */
  events(sessionId: string, since: number, signal: AbortSignal): Promise<Response>
  /**
   * Starts a run (`POST {base}/{id}/runs`), the answer waiting up to `waitMs` for its first change (progress, or its end). A
   * server that runs steps in the request streams the run instead: the last record it sent is
   * the answer (the run's end, or where it was when the stream broke off).
   */
  startRun(sessionId: string, start: { runId: string; step: string; input?: JsonValue }, waitMs: number): Promise<RunAnswer>
  /** One run, once its `rev` is above `after` or after `waitMs` (a long poll); null when there is no such run. */
  getRun(sessionId: string, runId: string, after: number, waitMs: number): Promise<RunAnswer | null>
  /** Cancels a run (a finished one is answered as it is); null when there is no such run. */
  cancelRun(sessionId: string, runId: string): Promise<RunAnswer | null>
  /** The session's runs, newest first. */
  listRuns(sessionId: string): Promise<RunRecord[]>
}

/** Where the session endpoints are mounted, without trailing slashes. */
export function endpointBase(endpoint: string = DEFAULT_BASE): string {
  return withoutTrailingSlashes(endpoint)
}

/** The protocol's requests over `fetch`, with every failure turned into a {@link SessionError}. */
export function createTransport(options: TransportOptions): Transport {
  const endpoint = endpointBase(options.endpoint)
  /** The caller's headers (a function is asked per request, for fresh tokens). */
  const headersOf = async () => new Headers(typeof options.headers === 'function' ? await options.headers() : options.headers)

  async function request<T>(
    method: string,
    path: string,
    body?: unknown,
    init: { keepalive?: boolean; signal?: AbortSignal; waitMs?: number } = {},
  ): Promise<T | null> {
    const fetchFn = options.fetch ?? globalThis.fetch
    const headers = await headersOf()
    if (body !== undefined) headers.set('content-type', 'application/json')
    let response: Response
    try {
      response = await fetchFn(resolveUrl(`${endpoint}${path}`), {
        method,
        headers,
        ...(body !== undefined && { body: JSON.stringify(body) }),
        ...(init.keepalive && { keepalive: true }),
        // A long poll may wait `waitMs` before it answers: the timeout is for the answer after that.
        signal: withTimeout(init.signal, options.timeoutMs + (init.waitMs ?? 0)),
      })
    } catch (error) {
      if (error instanceof DOMException && error.name === 'TimeoutError') {
        throw new SessionError('timeout', `No answer within ${options.timeoutMs + (init.waitMs ?? 0)} ms`, undefined, true)
      }
      throw new SessionError('network_error', `Could not reach the server: ${(error as Error).message}`, undefined, true)
    }
    if (response.status === 404 && method === 'GET') {
      const failure = await readError(response)
      if (failure.code === 'not_found') return null
      throw failure
    }
    if (!response.ok) throw await readError(response)
    if (response.status === 204) return null
    // A server that runs steps in the request streams the run: its last event is the answer.
    if (response.headers.get('content-type')?.startsWith('text/event-stream')) return lastEvent(await response.text()) as T
    try {
      return (await response.json()) as T
    } catch {
      throw new SessionError('http_error', `The server's answer (${response.status}) is not JSON`, response.status, true)
    }
  }

  const sessionPath = (sessionId: string) => `/${encodeURIComponent(sessionId)}`
  return {
    get: (sessionId) => request<SessionSnapshot>('GET', sessionPath(sessionId)),
    patch: async (sessionId, patch, init) => (await request<SessionSnapshot>('POST', sessionPath(sessionId), patch, init))!,
    run: async (sessionId, step, input) =>
      (await request('POST', `${sessionPath(sessionId)}/run/${encodeURIComponent(step)}`, input === undefined ? {} : { input }))!,
    async events(sessionId, since, signal) {
      const headers = await headersOf()
      headers.set('accept', 'text/event-stream')
      headers.set('last-event-id', String(since))
      const response = await (options.fetch ?? globalThis.fetch)(resolveUrl(`${endpoint}${sessionPath(sessionId)}/events`), {
        headers,
        signal,
      })
      if (!response.ok || !response.body) throw await readError(response)
      return response
    },
    startRun: async (sessionId, start, waitMs) =>
      (await request<RunAnswer>('POST', `${sessionPath(sessionId)}/runs${waitMs > 0 ? `?waitMs=${waitMs}` : ''}`, start, { waitMs }))!,
    getRun: (sessionId, runId, after, waitMs) =>
      request<RunAnswer>('GET', `${sessionPath(sessionId)}/runs/${encodeURIComponent(runId)}?after=${after}&waitMs=${waitMs}`, undefined, {
        waitMs,
      }),
    async cancelRun(sessionId, runId) {
      try {
        return await request<RunAnswer>('POST', `${sessionPath(sessionId)}/runs/${encodeURIComponent(runId)}/cancel`)
      } catch (error) {
        if (error instanceof SessionError && error.code === 'not_found') return null
        throw error
      }
    },
    listRuns: async (sessionId) => (await request<{ runs: RunRecord[] }>('GET', `${sessionPath(sessionId)}/runs`))?.runs ?? [],
    adopt: async (sessionId) => (await request<SessionSnapshot>('POST', `${sessionPath(sessionId)}/adopt`))!,
    list: async () => (await request<{ sessions: SessionSummary[] }>('GET', ''))?.sessions ?? [],
    remove: async (sessionId) => {
      try {
        await request('DELETE', sessionPath(sessionId))
      } catch (error) {
        if (!(error instanceof SessionError && error.code === 'not_found')) throw error
      }
    },
  }
}

/** The last event's data of a streamed start (`event: run`): the run's end. */
function lastEvent(text: string): unknown {
  const data = text.lastIndexOf('\ndata: ')
  if (data === -1) throw new SessionError('http_error', 'The run stream ended without a run', undefined, true)
  return JSON.parse(text.slice(data + 7, text.indexOf('\n', data + 7)))
}

/** The timeout, and the caller's signal when given (without `AbortSignal.any`, only the timeout: the caller does not wait for the abort). */
function withTimeout(signal: AbortSignal | undefined, timeoutMs: number): AbortSignal {
  const timeout = AbortSignal.timeout(timeoutMs)
  return signal && typeof AbortSignal.any === 'function' ? AbortSignal.any([signal, timeout]) : timeout
}

function resolveUrl(url: string): string {
  const base = (globalThis as { location?: { href: string } }).location?.href
  return base ? new URL(url, base).href : url
}

async function readError(response: Response): Promise<SessionError> {
  const retryable = isRetryableStatus(response.status)
  try {
    const body = (await response.json()) as { error?: Partial<Omit<ErrorBody['error'], 'message'>> & { message?: unknown } }
    if (body.error && typeof body.error.code === 'string') {
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a server's message is shown as it came, whatever its type
      return new SessionError(body.error.code, String(body.error.message ?? body.error.code), response.status, retryable)
    }
  } catch {
    // Not the protocol's JSON (a proxy's error page, say): fall through to a generic error.
  }
  return new SessionError('http_error', `The server answered ${response.status}`, response.status, retryable)
}
