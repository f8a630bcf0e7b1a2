import { parseTag, type SessionBase } from '../shared/delta.js'
import { MigrationError } from '../shared/migrations.js'
import { DEFAULT_BASE, DEFAULT_MAX_BYTES, type JsonValue, type Variables, withoutTrailingSlashes } from '../shared/protocol.js'
import { isSessionId } from '../shared/rules.js'
import { firstSchemaProblem, type SessionSchema } from '../shared/schema.js'
import { baseOf, etagOf, noneMatch, runAnswerText, sessionAnswer } from './answers.js'
import { errorResponse, jsonResponse, jsonTextResponse, SchemaMismatchError, SessionProtocolError } from './errors.js'
import { createChangeFeed } from './events.js'
import { mayReach, type SessionChange, validChange } from './merge.js'
import { parseRunInput, parseRunStart, readJsonBody, schemaVersionOf } from './request.js'
import { createRunner, STEP_RESULT_PROBLEMS } from './runs.js'
import { runStep, stepFunction, type Steps } from './steps.js'
import type { ApplyResult, Caller, ConcurrentRuns, SessionStore } from './stores/types.js'

export interface SessionHandlerOptions {
  store: SessionStore
  /** Workflow steps that `POST {base}/{id}/run/{step}` may run. */
  steps?: Steps
  /** Where the endpoints are mounted; default `/api/session`. */
  base?: string
  /** Largest body and largest session, in bytes; default 1 MiB. */
  maxBytes?: number
  /**
   * The caller's user id, or null for an anonymous caller. A session records the user that
   * created it; every other caller gets 404 for it. The owner comes from here only, never from
   * a request's body.
   */
  authorize?: (request: Request) => string | null | undefined | Promise<string | null | undefined>
  /** With `authorize`: answer 401 to a request without a user. */
  requireUser?: boolean
  /**
   * Origins allowed to change sessions (`https://app.example.com`). When set, a POST or DELETE
   * whose `Origin` header is another origin gets 403 `forbidden_origin` (requests without an
   * Origin header, from non-browser clients, pass). Default: any origin.
   */
  allowedOrigins?: string[]
  /** Most variables one patch may set or delete; default 1000 (413 `too_large` beyond). */
  maxKeysPerPatch?: number
  /** Standard Schemas for variables and workflow fields, applied to patches and to step results (the client's schema). */
  schema?: SessionSchema
  /**
   * Told of unexpected errors and of steps that failed by an error other than a `StepError` (the
   * response says only what is safe). Default: console.error.
   */
  onError?: (error: unknown, context: { request?: Request; step?: string }) => void
  /** A run's time limit unless its step has its own (`{ run, timeoutMs }`); default 15 minutes. */
  runTimeoutMs?: number
  /**
   * A start of a run while a run of the same step is running in the session: `join` (default)
   * answers the running run, `refuse` answers 409 `run_in_progress`.
   */
  concurrentRuns?: ConcurrentRuns
  /**
   * For platforms that freeze a function once it has answered (serverless route handlers): the
   * start of a run stays open and streams the run's record until it ends. If that request dies,
   * the run ends `lost`. Default false: a run goes on after its start is answered.
   */
  runsInRequest?: boolean
  /** One line for each run a shutdown (`close()`) ended `lost`. Default: console.warn. */
  log?: (line: string) => void
}

/**
 * A fetch-style handler: `Request` in, `Response` out; `close()` ends open change streams (before
 * shutting down); `allowed(pathname)` lists an endpoint's methods (the Node adapter's `Allow`).
 */
export type SessionHandler = ((request: Request) => Promise<Response>) & {
  /** Ends open change streams and ends this process's running runs `lost` (one log line each). */
  close(this: void): Promise<void>
  allowed(this: void, pathname: string): string[]
}

/** What a route's method is given, once the request passed the checks every route shares. */
interface Call {
  request: Request
  caller: Caller
  /** The session id (checked), or '' on the listing route. */
  sessionId: string
  /** The step name on the run route. */
  step: string
  /** The run id on the routes of one run. */
  runId: string
}

type RouteName = 'list' | 'session' | 'run' | 'events' | 'adopt' | 'runs' | 'runRecord' | 'runCancel'

/**
 * The session protocol (docs/protocol.md) as one `Request → Response` function, for any runtime
 * with the Fetch API. Mount it at `base`; the Node adapter is `serve()`. Requests are checked in
 * the protocol's order: path, method, origin, user, session id, step name, then the body.
 *
 * @example
 * const handler = createSessionHandler({
 *   store: memoryStore(),
 *   steps: { register: async ({ variables }) => ({ output: { ok: true }, variables: { status: 'done' } }) },
 * })
 * const response = await handler(new Request('http://localhost/api/session/abcdefgh12'))
 */
export function createSessionHandler(options: SessionHandlerOptions): SessionHandler {
  const { store, steps = {}, maxBytes = DEFAULT_MAX_BYTES, authorize, requireUser = false, schema, maxKeysPerPatch = 1000 } = options
  const allowedOrigins = options.allowedOrigins && new Set(options.allowedOrigins.map(withoutTrailingSlashes))
  const base = withoutTrailingSlashes(options.base ?? DEFAULT_BASE)
  const onError = options.onError ?? ((error: unknown) => console.error('[workflow-session]', error))
  const feed = createChangeFeed(store)
  const runner = createRunner({
    store,
    steps,
    schema,
    maxBytes,
    runTimeoutMs: options.runTimeoutMs,
    concurrentRuns: options.concurrentRuns ?? 'join',
    report: (error, step) => onError(error, { step }),
    log: options.log ?? ((line) => console.warn(line)),
    announce: feed.announceRun,
    listen: feed.listen,
  })

  /**
   * A patch written in schema version `from`, moved to the server's by the store's migrations
   * (docs/protocol.md, "Schema versions"). One the migrations cannot move, or from a newer page,
   * goes to the store as it came, which refuses it with `schema_mismatch` once the owner is checked.
   */
  function movedToServer(patch: SessionChange, from: number): { patch: SessionChange; schemaVersion: number } {
    const { migrations } = store
    if (!migrations || from >= migrations.version) return { patch, schemaVersion: from }
    try {
      const moved = migrations.migratePatch({ variables: patch.variables ?? {}, deleted: patch.deleted ?? [] }, from)
      return { patch: validChange({ ...patch, ...moved }), schemaVersion: migrations.version }
    } catch (error) {
      if (error instanceof MigrationError) return { patch, schemaVersion: from }
      throw error
    }
  }

  const routes: Record<RouteName, Partial<Record<string, (call: Call) => Promise<Response>>>> = {
    list: {
      async GET({ request, caller }) {
        const { limit, offset } = pageOf(new URL(request.url).searchParams)
        // Only a known user has "their" sessions. Listing anonymous sessions would hand out their
        // ids, and an id is all it takes to read one.
        return jsonResponse({ sessions: caller.userId === null ? [] : await store.list({ userId: caller.userId, limit, offset }) })
      },
    },
    session: {
      async GET({ request, sessionId, caller }) {
        // A client that holds a version gets what changed since it: nothing (304) when nothing did.
        const answer = await sessionAnswer(store, sessionId, caller, baseOf(request))
        if (answer === null) throw noSuchSession()
        const etag = etagOf(answer)
        if (answer.current || noneMatch(request, etag))
          return new Response(null, { status: 304, headers: { etag, 'cache-control': 'no-store' } })
        return jsonTextResponse(answer.json, 200, { etag })
      },
      async POST({ request, sessionId, caller }) {
        const base = deltaBase(request)
        // Checked here, at the edge, and only here: the protocol's rules come before the app's
        // schema, and the store takes a change that passed validChange as it is. The whole path of
        // a patch, from here to the commit, reads top to bottom in stores/define.ts.
        const body = await readJsonBody(request, maxBytes)
        const written = validChange(body)
        const keyCount = Object.keys(written.variables ?? {}).length + (written.deleted?.length ?? 0)
        if (keyCount > maxKeysPerPatch)
          throw new SessionProtocolError('too_large', `A patch may change at most ${maxKeysPerPatch} variables`)
        // An older page's patch is moved to the server's names first, so that the app's schema checks what will be stored.
        const { patch, schemaVersion } = movedToServer(written, schemaVersionOf(body, 'invalid_patch'))
        const problem = await firstSchemaProblem(schema, patch.variables)
        if (problem) throw new SessionProtocolError('invalid_patch', problem)
        const result = await store.apply(sessionId, patch, { caller, maxBytes, schemaVersion, ...base })
        if (result.applied) feed.announce(sessionId)
        return jsonTextResponse(jsonOf(result))
      },
      async DELETE({ sessionId, caller }) {
        if (!(await store.delete(sessionId, { caller }))) throw noSuchSession()
        return new Response(null, { status: 204 })
      },
    },
    run: {
      async POST({ request, sessionId, caller, step }) {
        const base = deltaBase(request)
        const body = await readJsonBody(request, maxBytes, { emptyNeedsNoType: true })
        const input = parseRunInput(body)
        const schemaVersion = schemaVersionOf(body, 'invalid_patch')
        // Read as the server, so that another user's session is refused before its step runs.
        const current = await store.get(sessionId)
        if (current && !mayReach(current, caller)) throw noSuchSession()
        // The step is the server's code: the caller, and the session, must be in the server's shape.
        const serverVersion = store.schemaVersion ?? 1
        if (current && (current.schemaVersion ?? 1) > serverVersion)
          throw new SchemaMismatchError(
            `The session is stored in schema version ${current.schemaVersion}, newer than this server's (${serverVersion})`,
            current.schemaVersion!,
          )
        if (schemaVersion !== serverVersion)
          throw new SchemaMismatchError(
            `The step is asked in schema version ${schemaVersion}; this server's is ${serverVersion}`,
            serverVersion,
          )
        const variables: Variables = current?.variables ?? {}
        const report = (error: unknown) => onError(error, { request, step })
        const result = await runStep(
          stepFunction(steps[step]!),
          {
            sessionId,
            variables,
            input: input as JsonValue | undefined,
            userId: caller.userId ?? undefined,
            runId: undefined,
            signal: request.signal,
            progress: () => {},
          },
          report,
        )
        const problem = await firstSchemaProblem(schema, result.variables)
        if (problem) {
          report(new Error(problem))
          throw new SessionProtocolError('step_failed', `Step "${step}" returned a value its schema refuses: ${problem}`)
        }
        const change = { variables: result.variables ?? {}, deleted: result.deleted ?? [] }
        // The step's changes are server code's: the store checks them (one check, there).
        const stored = await store.apply(sessionId, change, { caller, maxBytes, ...base }).catch((error: unknown) => {
          // The step's own changes broke a rule: that is the step's failure, and nothing was stored.
          if (error instanceof SessionProtocolError && STEP_RESULT_PROBLEMS.has(error.code)) {
            report(error)
            throw new SessionProtocolError('step_failed', `Step "${step}" returned changes that cannot be stored: ${error.message}`)
          }
          throw error
        })
        if (stored.applied) feed.announce(sessionId)
        return jsonTextResponse(`{"output":${JSON.stringify(result.output ?? null)},"session":${jsonOf(stored)}}`)
      },
    },
    adopt: {
      async POST({ request, sessionId, caller }) {
        // Sign-in: the caller takes a session made before it (ownerless) as its own, explicitly.
        if (caller.userId === null) throw new SessionProtocolError('unauthenticated', 'Sign in to adopt a session')
        // No body is read; like a run's, the request has no content type or JSON (never a form's).
        await readJsonBody(request, maxBytes, { emptyNeedsNoType: true })
        const base = baseOf(request)
        const snapshot = await store.adopt(sessionId, caller.userId)
        feed.announce(sessionId)
        // A client that reads deltas gets what changed since its base (the owner, the version).
        if (base === undefined) return jsonResponse(snapshot)
        return jsonTextResponse((await sessionAnswer(store, sessionId, caller, base))?.json ?? JSON.stringify(snapshot))
      },
    },
    runs: {
      async GET({ sessionId, caller }) {
        const runs = await store.listRuns(sessionId, { caller })
        if (!runs) throw noSuchSession()
        return jsonResponse({ runs })
      },
      async POST({ request, sessionId, caller }) {
        const base = baseOf(request)
        const start = parseRunStart(await readJsonBody(request, maxBytes))
        if (!Object.hasOwn(steps, start.step)) throw new SessionProtocolError('unknown_step', `No step named "${start.step}"`)
        const waitMs = waitOf(new URL(request.url).searchParams)
        const { run, created, done } = await runner.start(sessionId, caller, start)
        if (created && options.runsInRequest) return runner.stream(sessionId, run, caller, request.signal)
        // With ?waitMs, the answer waits for the run's first change (progress, or its end): a quick step is one request.
        let answer = run
        if (waitMs > 0 && run.status === 'running')
          answer = created
            ? await runner.firstChange(sessionId, run, caller, done, waitMs)
            : ((await runner.wait(sessionId, run.runId, caller, run.rev, waitMs)) ?? run)
        return jsonTextResponse(await runAnswerText(store, sessionId, answer, caller, base), created ? 202 : 200)
      },
    },
    runRecord: {
      async GET({ request, sessionId, caller, runId }) {
        const base = baseOf(request)
        const query = new URL(request.url).searchParams
        const after = query.get('after')
        if (after !== null && !/^\d{1,15}$/.test(after))
          throw new SessionProtocolError('bad_request', '"after" must be a whole number (a rev)')
        const run = await runner.wait(sessionId, runId, caller, after === null ? -1 : Number(after), waitOf(query))
        if (!run) throw noSuchRun()
        // A client that reads deltas and holds rev `after` of the run gets what changed since.
        return jsonTextResponse(await runAnswerText(store, sessionId, run, caller, base, after === null ? 0 : Number(after)))
      },
    },
    runCancel: {
      async POST({ request, sessionId, caller, runId }) {
        const base = baseOf(request)
        // No body is read; like a run's, the request has no content type or JSON (never a form's).
        await readJsonBody(request, maxBytes, { emptyNeedsNoType: true })
        const run = await runner.cancel(sessionId, runId, caller)
        if (!run) throw noSuchRun()
        return jsonTextResponse(await runAnswerText(store, sessionId, run, caller, base))
      },
    },
    events: {
      async GET({ request, sessionId, caller }) {
        // Every event is read as the caller: another user's session streams exactly like an
        // unused id (nothing but keep-alives), so the feed tells no one which ids exist.
        // What the caller has: Last-Event-ID (an EventSource's reconnect), else Session-Base, else
        // ?since=. A tag (or Session-Base: 0) streams deltas; a plain version, snapshots.
        const base = baseOf(request)
        const given = [request.headers.get('last-event-id'), new URL(request.url).searchParams.get('since')].map((text) => {
          if (text === null) return undefined
          if (/^\d{1,15}$/.test(text)) return { version: Number(text) }
          const tag = text === '0' ? null : parseTag(text)
          if (!tag)
            throw new SessionProtocolError('bad_request', 'Last-Event-ID and since must be a version or a tag: {version}@{createdAt}')
          return tag
        })
        return feed.stream(sessionId, given[0] ?? base ?? given[1] ?? { version: 0 }, caller, request.signal)
      },
    },
  }

  async function route(request: Request): Promise<Response> {
    const path = pathOf(request.url)
    if (path !== base && !path.startsWith(`${base}/`)) throw noSuchEndpoint()
    const parts = path.slice(base.length).split('/').filter(Boolean).map(decodePart)
    const name = routeOf(parts)
    const method = request.method.toUpperCase()
    const answer = routes[name][method]
    if (!answer) throw new SessionProtocolError('method_not_allowed', 'Method not allowed here', Object.keys(routes[name]))

    if (allowedOrigins && method !== 'GET' && method !== 'HEAD') {
      const origin = request.headers.get('origin')
      if (origin !== null && !allowedOrigins.has(origin))
        throw new SessionProtocolError('forbidden_origin', 'Requests from this origin may not change sessions')
    }
    const userId = (await authorize?.(request)) ?? undefined
    if (requireUser && userId === undefined) throw new SessionProtocolError('unauthenticated', 'Sign in first')
    // Always a caller, never "trusted": a request reaches only sessions without an owner and its own.
    const caller: Caller = { userId: userId ?? null }

    const sessionId = parts[0] ?? ''
    if (name !== 'list' && !isSessionId(sessionId)) {
      throw new SessionProtocolError('invalid_session_id', 'A session id is 8 to 128 characters of A-Z a-z 0-9 _ -')
    }
    const step = name === 'run' ? parts[2]! : ''
    if (name === 'run' && !Object.hasOwn(steps, step)) throw new SessionProtocolError('unknown_step', `No step named "${step}"`)
    // The base a client states (docs/protocol.md, "Deltas") is checked next, before any body is read.
    if (name !== 'list' && method !== 'DELETE') baseOf(request)
    const runId = name === 'runRecord' || name === 'runCancel' ? parts[2]! : ''
    // An id no run can have is answered as an unknown run.
    if (runId !== '' && !isSessionId(runId)) throw noSuchRun()
    return answer({ request, caller, sessionId, step, runId })
  }

  const handler = async (request: Request) => {
    try {
      return await route(request)
    } catch (error) {
      if (error instanceof SessionProtocolError) return errorResponse(error)
      onError(error, { request })
      return errorResponse(new SessionProtocolError('internal_error', 'The server could not handle the request'))
    }
  }
  /** The methods the endpoint at `pathname` has (for an `Allow` header); empty when there is no such endpoint. */
  const allowed = (pathname: string): string[] => {
    if (pathname !== base && !pathname.startsWith(`${base}/`)) return []
    try {
      return Object.keys(routes[routeOf(pathname.slice(base.length).split('/').filter(Boolean))])
    } catch {
      return []
    }
  }
  const close = async () => {
    feed.close()
    await runner.close()
  }
  return Object.assign(handler, { close, allowed })
}

/** The answer of an apply as the protocol's JSON: the delta or snapshot asked for, else the store's own text when it has it (see `ApplyResult.json`). */
const jsonOf = (result: ApplyResult): string => result.answer?.json ?? result.json ?? JSON.stringify(result.snapshot)

/** The `base` option of an apply for a request that states one (a version above 0: there is something to make a delta from). */
function deltaBase(request: Request): { base?: SessionBase } {
  const base = baseOf(request)
  return base && base.version > 0 ? { base } : {}
}

/** The path of an absolute URL as a request carries it (`http://host/a/b?q` → `/a/b`), without parsing the whole URL. */
function pathOf(url: string): string {
  const start = url.indexOf('/', url.indexOf('//') + 2)
  if (start === -1) return '/'
  const query = url.indexOf('?', start)
  return url.slice(start, query === -1 ? undefined : query)
}

/** Which route a path's parts (after the base) name: `[]`, `[id]`, `[id, 'run', step]`, `[id, 'events']`. */
function routeOf(parts: string[]): RouteName {
  if (parts.length === 0) return 'list'
  if (parts.length === 1) return 'session'
  if (parts.length === 2 && parts[1] === 'events') return 'events'
  if (parts.length === 2 && parts[1] === 'adopt') return 'adopt'
  if (parts.length === 3 && parts[1] === 'run') return 'run'
  if (parts.length === 2 && parts[1] === 'runs') return 'runs'
  if (parts.length === 3 && parts[1] === 'runs') return 'runRecord'
  if (parts.length === 4 && parts[1] === 'runs' && parts[3] === 'cancel') return 'runCancel'
  throw noSuchEndpoint()
}

/** A listing page from `?limit=` (1–100, default 50) and `?offset=` (default 0). */
function pageOf(query: URLSearchParams): { limit: number; offset: number } {
  const number = (name: string, fallback: number, min: number, max: number) => {
    const text = query.get(name)
    if (text === null) return fallback
    const value = /^\d+$/.test(text) ? Number(text) : NaN
    if (!(value >= min && value <= max))
      throw new SessionProtocolError('bad_request', `"${name}" must be a whole number from ${min} to ${max}`)
    return value
  }
  return { limit: number('limit', 50, 1, 100), offset: number('offset', 0, 0, Number.MAX_SAFE_INTEGER) }
}

function decodePart(part: string): string {
  try {
    return decodeURIComponent(part)
  } catch {
    throw noSuchEndpoint()
  }
}

function noSuchSession(): SessionProtocolError {
  return new SessionProtocolError('not_found', 'No such session')
}

function noSuchRun(): SessionProtocolError {
  return new SessionProtocolError('not_found', 'No such run')
}

/** `?waitMs=`: 0 to 30000, default 0. */
function waitOf(query: URLSearchParams): number {
  const text = query.get('waitMs')
  if (text === null) return 0
  const value = /^\d{1,5}$/.test(text) ? Number(text) : NaN
  if (!(value <= 30_000)) throw new SessionProtocolError('bad_request', '"waitMs" must be a whole number from 0 to 30000')
  return value
}

function noSuchEndpoint(): SessionProtocolError {
  return new SessionProtocolError('not_found', 'No such endpoint')
}
