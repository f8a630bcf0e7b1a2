import { type Backend, type Check, CheckFailed, createBackend, cut, NoAnswer } from './conformance/backend.js'
import { adoptChecks } from './conformance/checks-adopt.js'
import { deltaChecks } from './conformance/checks-deltas.js'
import { errorChecks } from './conformance/checks-errors.js'
import { listingChecks } from './conformance/checks-listing.js'
import { runChecks } from './conformance/checks-runs.js'
import { schemaChecks } from './conformance/checks-schema.js'
import { sessionChecks } from './conformance/checks-sessions.js'
import { stepChecks } from './conformance/checks-steps.js'
import { loadShapes } from './conformance/openapi.js'
import { withoutTrailingSlashes } from './shared/protocol.js'

/** The outcome of one protocol check. */
export interface ConformanceResult {
  name: string
  /** False when the check failed. A skipped check is not a failure: `ok`, with `skipped`. */
  ok: boolean
  /** The check did not run; `detail` says what it needs. */
  skipped?: boolean
  /** Why it failed, or why it was skipped. */
  detail?: string
}

export interface ConformanceOptions {
  /**
   * Sent with every request but the one that checks what a caller without credentials is
   * listed: an API key, or a user's cookie or token when the backend lets no anonymous caller in.
   */
  headers?: Record<string, string>
  /**
   * A signed-in user's credentials (`{ Cookie: 'session=…' }`), added to `headers` for the
   * listing checks (their own sessions, newest first, and none of them to a stranger) and the
   * adoption checks (they take a session a caller without credentials made). Without it, the
   * checks that need a user are skipped.
   */
  userHeaders?: Record<string, string>
  /** The name the conformance step is registered under; default `conformance_echo`. */
  step?: string
  /** The backend's limit for a body and for a session, in bytes; default 1 MiB, at least 1024. */
  maxBytes?: number
  /**
   * Default: the global `fetch`. A request whose connection is reset or closed before any answer
   * (a kept-alive connection the server closed) is sent once more.
   */
  fetch?: typeof fetch
}

/** No answer at all from the backend (refused, reset, timed out): nothing could be checked. */
export class ConformanceUnreachable extends Error {
  override name = 'ConformanceUnreachable'
}

const CHECKS: Check[] = [
  ...sessionChecks,
  ...errorChecks,
  ...stepChecks,
  ...runChecks,
  ...listingChecks,
  ...adoptChecks,
  ...deltaChecks,
  ...schemaChecks,
]

const ALL_UNAUTHENTICATED =
  'every request was answered 401 unauthenticated: the backend requires a user, pass one\'s credentials with --header "Cookie: …" (or --header "Authorization: Bearer …")'

/**
 * Runs the checks of docs/protocol.md against a backend over HTTP, and matches every JSON answer
 * against docs/openapi.json. `base` is where the session endpoints are mounted, e.g.
 * `http://localhost:3000/api/session`. Each check uses sessions of its own, with ids unique to
 * the run; nothing else on the backend is touched. The backend declares the conformance schema
 * while it is tested (docs/protocol.md, "Schema versions"): runs and step calls are sent in its
 * version, 2. The step checks need the protocol's conformance step registered; without it they
 * are skipped, as are the listing and adoption checks that need `userHeaders`. When every request
 * is answered 401, the result is one failure saying so.
 *
 * @throws {ConformanceUnreachable} when the first request gets no answer.
 * @example
 * const results = await runConformance('http://localhost:8000/api/session', { userHeaders: { Cookie: 'session=…' } })
 * console.log(results.filter((r) => !r.ok))
 */
export async function runConformance(base: string, options: ConformanceOptions = {}): Promise<ConformanceResult[]> {
  const { maxBytes = 1024 * 1024, step = 'conformance_echo' } = options
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1024)
    throw new RangeError(`maxBytes must be a whole number of bytes, at least 1024 (got ${maxBytes})`)
  const backend = createBackend(withoutTrailingSlashes(base), {
    headers: options.headers ?? {},
    userHeaders: options.userHeaders,
    step,
    maxBytes,
    fetch: options.fetch ?? globalThis.fetch,
    shapeProblem: await loadShapes(),
  })
  try {
    await backend.get(backend.newId())
  } catch (error) {
    if (error instanceof NoAnswer) throw new ConformanceUnreachable(`cannot reach ${base}: ${error.reason}`)
  }
  const skip = {
    step: (await stepMissing(backend))
      ? `the step checks need the conformance step "${step}" (docs/protocol.md, "The conformance step"): register it while testing, conformanceSteps in TypeScript, conformance_steps in Python${options.step ? '' : ', or name yours with --step'}`
      : undefined,
    user: options.userHeaders
      ? undefined
      : 'the signed-in listing and adoption checks need a user: pass their credentials with --user-header "Cookie: …"',
  }

  const results: ConformanceResult[] = []
  for (const { name, needs, run } of CHECKS) {
    const reason =
      needs &&
      [needs]
        .flat()
        .map((need) => skip[need])
        .find((why) => why !== undefined)
    if (reason) {
      results.push({ name, ok: true, skipped: true, detail: reason })
      continue
    }
    try {
      await run(backend)
      results.push({ name, ok: true })
    } catch (error) {
      // Cut again: a message quoting an answer stays a line or two, whatever the backend sent.
      results.push({
        name,
        ok: false,
        detail: cut(error instanceof CheckFailed ? error.message : `the check broke: ${String(error)}`, 400),
      })
    }
  }
  const { answers, unauthenticated } = backend.counts
  return answers > 0 && answers === unauthenticated ? [{ name: ALL_UNAUTHENTICATED, ok: false }] : results
}

/** Whether a run of the conformance step is 404 unknown_step (its failing input stores nothing when it is there). */
async function stepMissing(backend: Backend): Promise<boolean> {
  try {
    const answer = await backend.run(backend.newId(), { input: { fail: 'conformance: is this step registered?' } })
    return answer.status === 404 && answer.body?.error?.code === 'unknown_step'
  } catch {
    return false
  }
}
