import { applyRunDelta, baseHeaderOf, isRunDelta, type SessionBase, sessionFrom } from '../shared/delta.js'
import {
  DEFAULT_BASE,
  type ErrorBody,
  type JsonValue,
  type RunAnswer,
  type RunRecord,
  type RunResponse,
  type RunWireAnswer,
  SESSION_BASE_HEADER,
  type SessionDelta,
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
  /**
   * The snapshot the client holds (null: none yet). Given, every request states its tag in
   * `Session-Base`, and the deltas answered are applied to it (docs/protocol.md, "Deltas"): the
   * transport hands out whole snapshots either way.
   */
  base?: () => SessionSnapshot | null
  /** Said in the body of every run start and step call (a patch carries its own): `{ schemaVersion }`, or nothing at 1. */
  schemaVersion?: { schemaVersion?: number }
  /** Told of every 409 `schema_mismatch`, whichever request met it (a patch, a run, a step call). */
  onSchemaMismatch?: (failure: SessionError) => void
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
  /**
   * Opens the change stream (`GET {base}/{id}/events`) from what the client holds (`since`: the
   * snapshot, or its version; null for nothing). No timeout: it stays open. A client that reads
   * deltas gets them there too (`event: delta`): the caller applies them in order.
   */
  events(sessionId: string, since: SessionBase | number | null, signal: AbortSignal): Promise<Response>
  /**
   * Starts a run (`POST {base}/{id}/runs`), the answer waiting up to `waitMs` for its first change (progress, or its end). A
   * server that runs steps in the request streams the run instead: the last record it sent is
   * the answer (the run's end, or where it was when the stream broke off).
   */
  startRun(sessionId: string, start: { runId: string; step: string; input?: JsonValue }, waitMs: number): Promise<RunAnswer>
  /**
   * One run, once its `rev` is above the `held` record's or after `waitMs` (a long poll); null
   * when there is no such run. What changed since `held` is all that comes (a run delta).
   */
  getRun(sessionId: string, runId: string, held: RunRecord | undefined, waitMs: number): Promise<RunAnswer | null>
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

  /** What a request states it holds (`Session-Base`), when the client reads deltas: the snapshot, or null for none. */
  type Held = { snapshot: SessionSnapshot | null } | undefined

  async function request<T>(
    method: string,
    path: string,
    body?: unknown,
    init: { keepalive?: boolean; signal?: AbortSignal; waitMs?: number; held?: Held } = {},
  ): Promise<T | null> {
    const fetchFn = options.fetch ?? globalThis.fetch
    const headers = await headersOf()
    if (body !== undefined) headers.set('content-type', 'application/json')
    if (init.held) headers.set(SESSION_BASE_HEADER, baseHeaderOf(init.held.snapshot))
    let response: Response
    try {
      response = await fetchFn(resolveUrl(`${endpoint}${path}`), {
        method,
        headers,
        // A 304 (nothing changed since the base) comes to the client as it is, never from a cache.
        ...(init.held && { cache: 'no-store' as const }),
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
    // Nothing changed since the base stated: the snapshot held is the answer.
    if (response.status === 304 && init.held?.snapshot) return init.held.snapshot as T
    if (!response.ok) {
      const failure = await readError(response)
      if (failure.code === 'schema_mismatch') options.onSchemaMismatch?.(failure)
      throw failure
    }
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
  /** The base a request states now (when the client reads deltas): what its answer's deltas apply to. */
  const held = (): Held => (options.base ? { snapshot: options.base() } : undefined)

  /** The whole session from an answer: a snapshot as it is, a delta applied to the base held; one for another base asks again for the snapshot. */
  async function sessionOf(sessionId: string, body: SessionSnapshot | SessionDelta, stated: Held): Promise<SessionSnapshot> {
    const snapshot = sessionFrom(stated?.snapshot ?? null, body)
    if (snapshot) return snapshot
    const whole = await request<SessionSnapshot>('GET', sessionPath(sessionId))
    if (!whole) throw new SessionError('not_found', 'No such session', 404, false)
    return whole
  }

  /** A run answer made whole: the run delta applied to the record held, the session to the base held. */
  async function runAnswerOf(
    sessionId: string,
    answer: RunWireAnswer,
    stated: Held,
    heldRun: RunRecord | undefined,
    again: () => Promise<RunAnswer | null>,
  ): Promise<RunAnswer | null> {
    let run: RunRecord
    if (isRunDelta(answer.run)) {
      const whole = heldRun && applyRunDelta(heldRun, answer.run)
      if (!whole) return again()
      run = whole
    } else run = answer.run
    return answer.session ? { run, session: await sessionOf(sessionId, answer.session, stated) } : { run }
  }

  /** A request answered with a session: made whole. */
  async function withSession(
    method: string,
    sessionId: string,
    path: string,
    body?: unknown,
    init: { keepalive?: boolean; signal?: AbortSignal } = {},
  ): Promise<SessionSnapshot | null> {
    const stated = held()
    const answer = await request<SessionSnapshot | SessionDelta>(method, path, body, { ...init, held: stated })
    return answer && sessionOf(sessionId, answer, stated)
  }

  /** A request answered about one run: made whole (null: no such run). */
  async function aboutRun(
    method: string,
    sessionId: string,
    path: string,
    body: unknown,
    init: { waitMs?: number },
    heldRun: RunRecord | undefined,
    again: () => Promise<RunAnswer | null>,
  ): Promise<RunAnswer | null> {
    const stated = held()
    const answer = await request<RunWireAnswer>(method, path, body, { ...init, held: stated })
    return answer && runAnswerOf(sessionId, answer, stated, heldRun, again)
  }

  const transport: Transport = {
    get: (sessionId) => withSession('GET', sessionId, sessionPath(sessionId)),
    patch: async (sessionId, patch, init) => (await withSession('POST', sessionId, sessionPath(sessionId), patch, init))!,
    async run(sessionId, step, input) {
      const stated = held()
      const path = `${sessionPath(sessionId)}/run/${encodeURIComponent(step)}`
      const body = { ...(input !== undefined && { input }), ...options.schemaVersion }
      const answer = (await request<RunResponse>('POST', path, body, { held: stated }))!
      return { ...answer, session: await sessionOf(sessionId, answer.session, stated) } as RunResponse<never>
    },
    async events(sessionId, since, signal) {
      const headers = await headersOf()
      headers.set('accept', 'text/event-stream')
      // Reading deltas: the stream starts from the tag held (or from nothing, `0`); else from a version.
      if (options.base) headers.set(SESSION_BASE_HEADER, baseHeaderOf(typeof since === 'object' ? since : null))
      else headers.set('last-event-id', String(typeof since === 'number' ? since : (since?.version ?? 0)))
      const response = await (options.fetch ?? globalThis.fetch)(resolveUrl(`${endpoint}${sessionPath(sessionId)}/events`), {
        headers,
        signal,
      })
      if (!response.ok || !response.body) throw await readError(response)
      return response
    },
    startRun: async (sessionId, start, waitMs) => {
      const path = `${sessionPath(sessionId)}/runs${waitMs > 0 ? `?waitMs=${waitMs}` : ''}`
      const body = { ...start, ...options.schemaVersion }
      return (await aboutRun('POST', sessionId, path, body, { waitMs }, undefined, () => Promise.resolve(null)))!
    },
    getRun(sessionId, runId, heldRun, waitMs) {
      // Only a record the server made (rev 1 or more) can be completed by a run delta.
      const usable = heldRun && heldRun.rev >= 1 ? heldRun : undefined
      const path = (after: number, wait: number) =>
        `${sessionPath(sessionId)}/runs/${encodeURIComponent(runId)}?after=${after}&waitMs=${wait}`
      // A run delta that does not fit the record held: the run whole, at once.
      const whole = () => aboutRun('GET', sessionId, path(0, 0), undefined, {}, undefined, () => Promise.resolve(null))
      return aboutRun('GET', sessionId, path(heldRun?.rev ?? 0, waitMs), undefined, { waitMs }, usable, whole)
    },
    async cancelRun(sessionId, runId) {
      try {
        const path = `${sessionPath(sessionId)}/runs/${encodeURIComponent(runId)}/cancel`
        return await aboutRun('POST', sessionId, path, undefined, {}, undefined, () => Promise.resolve(null))
      } catch (error) {
        if (error instanceof SessionError && error.code === 'not_found') return null
        throw error
      }
    },
    listRuns: async (sessionId) => (await request<{ runs: RunRecord[] }>('GET', `${sessionPath(sessionId)}/runs`))?.runs ?? [],
    adopt: async (sessionId) => (await withSession('POST', sessionId, `${sessionPath(sessionId)}/adopt`))!,
    list: async () => (await request<{ sessions: SessionSummary[] }>('GET', ''))?.sessions ?? [],
    remove: async (sessionId) => {
      try {
        await request('DELETE', sessionPath(sessionId))
      } catch (error) {
        if (!(error instanceof SessionError && error.code === 'not_found')) throw error
      }
    },
  }
  return transport
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
      const { schemaVersion } = body.error as { schemaVersion?: unknown }
      const version = typeof schemaVersion === 'number' ? schemaVersion : undefined
      // eslint-disable-next-line @typescript-eslint/no-base-to-string -- a server's message is shown as it came, whatever its type
      return new SessionError(body.error.code, String(body.error.message ?? body.error.code), response.status, retryable, version)
    }
  } catch {
    // Not the protocol's JSON (a proxy's error page, say): fall through to a generic error.
  }
  return new SessionError('http_error', `The server answered ${response.status}`, response.status, retryable)
}
