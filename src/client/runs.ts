import { applyRunDelta, isRunDelta } from '../shared/delta.js'
import { Listeners } from '../shared/listeners.js'
import type { JsonValue, RunAnswer, RunDelta, RunRecord, SessionSnapshot } from '../shared/protocol.js'
import { backoff } from './backoff.js'
import { SessionError } from './errors.js'
import type { LocalCopy, RunStart } from './local-copy.js'
import { randomId } from './session-id.js'
import type { Transport } from './transport.js'

/** How long a start waits on the server for the run's first change (progress, or its end): a quick step takes one request. */
const START_WAIT_MS = 5_000
/** How long one long poll of a run waits on the server. */
const POLL_WAIT_MS = 25_000
/** How many runs a page keeps in mind: as many finished ones as the server keeps, and the running ones. */
const KEPT = 50
/** The shortest time between two long polls of one run: progress shows at most once a second (the change feed of `liveUpdates` shows each). */
const POLL_EVERY_MS = 1_000

export interface RunParts {
  sessionId: string
  transport: Transport
  local: LocalCopy
  retry: { baseMs: number; maxMs: number }
  /** Every change made before the run is on the server first (the flush barrier). */
  flush: () => Promise<void>
  /** The session after a step's changes: taken into the view. */
  receive: (snapshot: SessionSnapshot) => void
  /** Made here and never written: the server has no session, nor runs of it, to ask for. */
  serverHasNone: () => boolean
}

/** A run that ended without succeeding: `code` is its `error.code` (`step_failed`, `cancelled`, `timed_out`, `lost`). */
export class RunFailedError extends SessionError {
  override name = 'RunFailedError'
  constructor(readonly run: RunRecord) {
    super(run.error?.code ?? 'step_failed', run.error?.message ?? `The run ended ${run.status}`, undefined, false)
  }
}

/**
 * The session's runs as this page knows them: started once per run id (kept in the local copy
 * before the request leaves, so a reload starts it again under the same id), watched by long
 * polls with no request timeout on the wait (a step may take ten minutes), cancelled, listed, and
 * told by the change stream. Hooks read `list()` and subscribe.
 */
export function createRuns(parts: RunParts) {
  const { sessionId, transport, local } = parts
  const known = new Map<string, RunRecord>()
  const listeners = new Listeners()
  /** `known` newest first, made when asked after a change. */
  let sorted: readonly RunRecord[] | null = []
  const watches = new Map<string, Promise<RunRecord>>()
  let refreshing: Promise<readonly RunRecord[]> | undefined
  /** Starts sent and not yet answered, by run id. */
  const starting = new Map<string, Promise<RunAnswer>>()
  let stopped = false

  /** Takes a record when it is newer than the one known (or drops one, `forget`); tells the hooks. */
  function learn(run: RunRecord, forget = false): void {
    const had = known.get(run.runId)
    if (forget) known.delete(run.runId)
    else if (had && had.rev >= run.rev) return
    else known.set(run.runId, run)
    // As many as the server keeps: the running ones and the newest finished ones (in the order learned).
    if (known.size > KEPT) for (const [runId, old] of known) if (old.status !== 'running' && known.size > KEPT) known.delete(runId)
    sorted = null
    listeners.notify()
  }

  /** A record or a run delta from elsewhere (the change stream); false for a delta of a run not held (rev 1 or more) to complete. */
  function receive(run: RunRecord | RunDelta): boolean {
    if (!isRunDelta(run)) {
      learn(run)
      return true
    }
    const held = known.get(run.runId)
    if (held && held.rev >= run.rev) return true
    const whole = held && applyRunDelta(held, run)
    if (whole) learn(whole)
    return whole !== null && whole !== undefined
  }

  function list(): readonly RunRecord[] {
    return (sorted ??= [...known.values()].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0)))
  }

  function take(answer: RunAnswer): RunRecord {
    learn(answer.run)
    if (answer.session) parts.receive(answer.session)
    return answer.run
  }

  /** Tries `request` again after a retryable failure (offline, 5xx, a timeout), with backoff, until it answers or the client stops. */
  async function retried<T>(request: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await request()
      } catch (error) {
        if (!(error instanceof SessionError && error.retryable) || stopped) throw error
        await new Promise((resolve) => setTimeout(resolve, backoff(attempt, parts.retry)))
      }
    }
  }

  /** Starts (or starts again under its id) a run, the answer waiting `waitMs` for its end. */
  async function begin(start: RunStart, waitMs: number): Promise<RunRecord> {
    const answered = retried(() => transport.startRun(sessionId, start, waitMs))
    starting.set(start.runId, answered)
    const run = take(await answered.finally(() => starting.delete(start.runId)))
    // Joined a run of the same step that was going: this id was never made.
    if (run.runId !== start.runId) {
      const mine = known.get(start.runId)
      if (mine) learn(mine, true)
      await local.forgetRun(start.runId)
    }
    return run
  }

  /**
   * A new run's start, made and kept on the device before its request leaves; the hooks show it
   * running from now on (rev 0 until the server's record replaces it), so it can be cancelled
   * while its start waits for a quick end.
   */
  async function made(step: string, input: JsonValue | undefined): Promise<RunStart> {
    await parts.flush()
    const start = { runId: `run-${randomId()}`, step, ...(input !== undefined && { input }) }
    await local.rememberRun(start)
    const now = new Date().toISOString()
    const empty = { progress: null, output: null, error: null, finishedAt: null, version: null }
    learn({ ...start, ...empty, input: input ?? null, status: 'running', startedAt: now, heartbeatAt: now, readVersion: 0, rev: 0 })
    return start
  }

  /** Follows a run by long polls until it ends; one watch per run however many ask. */
  function watch(runId: string): Promise<RunRecord> {
    let watching = watches.get(runId)
    if (!watching) {
      watching = (async () => {
        // A run of this page whose start is not answered yet: the server may not have it before that.
        await starting.get(runId)?.catch(() => {})
        let run = known.get(runId)
        let polledAt = 0
        while (!run || run.status === 'running') {
          // A poll answers at each change (progress, at most 4 a second): ask at most once a second.
          const since = Date.now() - polledAt
          if (since < POLL_EVERY_MS) await new Promise((resolve) => setTimeout(resolve, POLL_EVERY_MS - since))
          polledAt = Date.now()
          const answer = await retried(() => transport.getRun(sessionId, runId, run, POLL_WAIT_MS))
          run = take(answer ?? noSuchRun())
        }
        await local.forgetRun(runId)
        return run
      })().finally(() => watches.delete(runId))
      watches.set(runId, watching)
    }
    return watching
  }

  /** The output of a run that ended, or its failure. */
  function outcome<Output>(run: RunRecord): Output {
    if (run.status === 'succeeded') return run.output as Output
    throw new RunFailedError(run)
  }

  return {
    list,
    subscribe: (listener: () => void) => listeners.add(listener),
    receive,
    watch,
    /** Flushes, then starts a run of `step`; resolves with its record (running, or ended when quick). */
    async start(step: string, input?: JsonValue): Promise<RunRecord> {
      return begin(await made(step, input), 0)
    },
    /** Flushes, starts a run of `step` and waits for its end, however long: its output, or a {@link RunFailedError}. */
    async run<Output>(step: string, input?: JsonValue): Promise<Output> {
      const run = await begin(await made(step, input), START_WAIT_MS)
      if (run.status === 'running') return outcome<Output>(await watch(run.runId))
      // Its end is seen: the kept start goes (in the background: the output is not held for it).
      void local.forgetRun(run.runId)
      return outcome<Output>(run)
    },
    async cancel(runId: string): Promise<RunRecord> {
      const answer = await transport.cancelRun(sessionId, runId)
      if (answer) return take(answer)
      // Cancelled before its start reached the server: once the start is answered, again.
      const started = starting.get(runId)
      if (!started) noSuchRun()
      const { run } = await started
      return take((await transport.cancelRun(sessionId, run.runId)) ?? noSuchRun())
    },
    /** Fetches the session's runs; the hooks of one page that ask together share one request. */
    refresh(): Promise<readonly RunRecord[]> {
      if (parts.serverHasNone()) return Promise.resolve(list())
      refreshing ??= transport
        .listRuns(sessionId)
        .then((fetched) => {
          for (const run of fetched) learn(run)
          return list()
        })
        .finally(() => (refreshing = undefined))
      return refreshing
    },
    /** After a reload: the runs this device started are started again under their ids (once on the server) and watched. */
    async resume(): Promise<void> {
      for (const start of await local.runStarts()) {
        void begin(start, 0)
          .then(async (run) => {
            if (run.status === 'running') await watch(run.runId)
            else await local.forgetRun(run.runId)
          })
          .catch(() => {})
      }
    },
    stop() {
      stopped = true
    },
  }
}

function noSuchRun(): never {
  throw new SessionError('not_found', 'No such run', 404, false)
}
