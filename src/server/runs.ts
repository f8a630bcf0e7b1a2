import type { JsonValue, RunAnswer, RunRecord, Variables } from '../shared/protocol.js'
import { jsonValueProblem, utf8Length } from '../shared/rules.js'
import { firstSchemaProblem, type SessionSchema } from '../shared/schema.js'
import { SessionProtocolError } from './errors.js'
import { runStep, stepFunction, type Steps } from './steps.js'
import type { Caller, ConcurrentRuns, RunFinished, SessionStore } from './stores/types.js'

/** How often a running run's heartbeat is renewed (a cancel made on another server is seen then). */
const HEARTBEAT_MS = 5_000
/** The shortest time between two stored progress values of one run. */
const PROGRESS_MS = 250
/** The default time limit of a step. */
const DEFAULT_RUN_TIMEOUT_MS = 15 * 60_000
/** Errors of a step's changes that are the step's failure (it returned what cannot be stored), not the server's. */
export const STEP_RESULT_PROBLEMS = new Set(['invalid_key', 'invalid_patch', 'too_large'])

export interface RunnerOptions {
  store: SessionStore
  steps: Steps
  schema: SessionSchema | undefined
  maxBytes: number
  runTimeoutMs: number | undefined
  concurrentRuns: ConcurrentRuns
  /** Told of a step's unexpected error (not a `StepError`). */
  report: (error: unknown, step: string) => void
  /** One line for each run a shutdown ended. */
  log: (line: string) => void
  /** Tells the change feed (and the long polls) that a session or one of its runs changed. */
  announce: (sessionId: string) => void
  /** Listens for `announce` of one session (in this process, and from other servers through the store's `watch`). */
  listen: (sessionId: string, listener: () => void) => () => void
}

/** A run this process executes. */
interface Running {
  sessionId: string
  runId: string
  step: string
  controller: AbortController
}

/**
 * The runs of a handler: starts a step as a run record (once per run id), executes it outside
 * the request that started it, renews its heartbeat, stores its progress (coalesced), ends it in
 * exactly one state (its changes merged in that same atomic step), cancels it, and answers long
 * polls. The store keeps every record; this process keeps only the abort controllers of the
 * runs it executes.
 */
export function createRunner(options: RunnerOptions) {
  const { store, steps } = options
  const running = new Map<string, Running>()
  const keyOf = (sessionId: string, runId: string) => `${sessionId}/${runId}`

  /** The answer about a run: with the session when it succeeded. */
  async function answerOf(sessionId: string, run: RunRecord, caller: Caller): Promise<RunAnswer> {
    if (run.status !== 'succeeded') return { run }
    const session = await store.get(sessionId, { caller })
    return session ? { run, session } : { run }
  }

  /** Starts a run (or finds the one of that id, or the running one of that step): its record. */
  async function start(
    sessionId: string,
    caller: Caller,
    request: { runId: string; step: string; input: JsonValue | undefined; schemaVersion: number },
  ): Promise<{ run: RunRecord; created: boolean; done: Promise<RunFinished | null> }> {
    const { schemaVersion, ...run } = request
    const started = await store.startRun(
      sessionId,
      { ...run, ...(run.input !== undefined && { input: run.input }), concurrentRuns: options.concurrentRuns },
      { caller, maxBytes: options.maxBytes, schemaVersion },
    )
    if (started.created) options.announce(sessionId)
    const done = started.created ? execute(sessionId, started.run, started.variables ?? {}, caller) : Promise.resolve(null)
    return { run: started.run, created: started.created, done }
  }

  /** Runs the step of a run just made, and ends the run: how it ended here (null: it ended elsewhere, by a cancel, say). Never rejects. */
  async function execute(sessionId: string, run: RunRecord, variables: Variables, caller: Caller): Promise<RunFinished | null> {
    const definition = steps[run.step]!
    const controller = new AbortController()
    const self: Running = { sessionId, runId: run.runId, step: run.step, controller }
    running.set(keyOf(sessionId, run.runId), self)
    const timeoutMs =
      (typeof definition === 'function' ? undefined : definition.timeoutMs) ?? options.runTimeoutMs ?? DEFAULT_RUN_TIMEOUT_MS
    const progress = coalescedProgress(sessionId, run.runId, controller)
    const end = async (status: 'timed_out' | 'failed', message: string): Promise<RunFinished | null> => {
      const ended = await store
        .finishRun(sessionId, run.runId, { status, message })
        .catch((error: unknown) => (report(error, run.step), null))
      if (ended?.finished) options.announce(sessionId)
      return ended?.finished ? ended : null
    }
    const timer = setTimeout(() => {
      controller.abort(new Error('The step passed its time limit'))
      void end('timed_out', `The step did not finish within ${timeoutMs} ms`)
    }, timeoutMs)
    const heartbeat = setInterval(() => void progress.beat(), HEARTBEAT_MS)
    ;(heartbeat as { unref?: () => void }).unref?.()
    try {
      const result = await runStep(
        stepFunction(definition),
        {
          sessionId,
          variables,
          input: run.input ?? undefined,
          userId: caller.userId ?? undefined,
          runId: run.runId,
          signal: controller.signal,
          progress: progress.report,
        },
        (error) => report(error, run.step),
      )
      // Cancelled, timed out or lost meanwhile: that end was written; nothing of the step is merged.
      if (controller.signal.aborted) return null
      // The output is kept in the run's record: the size rule of a variable holds for it.
      if (result.output !== undefined && utf8Length(JSON.stringify(result.output)) > options.maxBytes) {
        report(new Error(`Step "${run.step}" returned an output over ${options.maxBytes} bytes`), run.step)
        return await end('failed', `Step "${run.step}" returned an output over ${options.maxBytes} bytes`)
      }
      const problem = await firstSchemaProblem(options.schema, result.variables)
      if (problem) {
        report(new Error(problem), run.step)
        return await end('failed', `Step "${run.step}" returned a value its schema refuses: ${problem}`)
      }
      await progress.flush()
      const change = { variables: result.variables ?? {}, deleted: result.deleted ?? [] }
      const ended = await store
        .finishRun(
          sessionId,
          run.runId,
          { status: 'succeeded', ...(result.output !== undefined && { output: result.output }), change },
          { maxBytes: options.maxBytes },
        )
        .catch(async (error: unknown) => {
          if (!(error instanceof SessionProtocolError && STEP_RESULT_PROBLEMS.has(error.code))) throw error
          // The step's own changes broke a rule: that is the step's failure, and nothing was stored.
          report(error, run.step)
          return end('failed', `Step "${run.step}" returned changes that cannot be stored: ${error.message}`)
        })
      if (ended?.finished) options.announce(sessionId)
      return ended?.finished ? ended : null
    } catch (error) {
      if (controller.signal.aborted) return null
      const message = error instanceof SessionProtocolError && error.code === 'step_failed' ? error.message : 'The step failed'
      if (!(error instanceof SessionProtocolError)) report(error, run.step)
      return await end('failed', message)
    } finally {
      clearTimeout(timer)
      clearInterval(heartbeat)
      running.delete(keyOf(sessionId, run.runId))
    }
  }

  function report(error: unknown, step: string): void {
    options.report(error, step)
  }

  /**
   * A run's `progress()`: checks the value, keeps the latest, and stores it at most every
   * {@link PROGRESS_MS}; `beat()` renews the heartbeat (with the latest value when there is one)
   * and aborts the step when the run ended elsewhere (cancelled through another server).
   */
  function coalescedProgress(sessionId: string, runId: string, controller: AbortController) {
    let latest: { value: JsonValue } | undefined
    let timer: ReturnType<typeof setTimeout> | undefined
    let lastWrite = 0
    let writing: Promise<void> = Promise.resolve()
    const write = () => {
      timer = undefined
      const progress = latest
      latest = undefined
      lastWrite = Date.now()
      writing = writing.then(async () => {
        const record = await store.touchRun(sessionId, runId, progress).catch(() => null)
        if (record && record.status !== 'running') controller.abort(new Error(`The run ended ${record.status}`))
        else if (progress) options.announce(sessionId)
      })
      return writing
    }
    return {
      report: (value: JsonValue): void => {
        const problem = jsonValueProblem(value)
        if (problem) throw new TypeError(`progress(): the value ${problem}`)
        if (utf8Length(JSON.stringify(value)) > options.maxBytes)
          throw new TypeError(`progress(): the value is over ${options.maxBytes} bytes`)
        if (controller.signal.aborted) return
        latest = { value: structuredClone(value) }
        timer ??= setTimeout(() => void write(), Math.max(0, lastWrite + PROGRESS_MS - Date.now()))
      },
      beat: () => (timer === undefined ? write() : writing),
      async flush() {
        if (timer !== undefined) {
          clearTimeout(timer)
          await write()
        }
        await writing
      },
    }
  }

  /** Ends a running run `cancelled` (its step's signal fires); a finished run is answered as it is. */
  async function cancel(sessionId: string, runId: string, caller: Caller): Promise<RunRecord | null> {
    const ended = await store.finishRun(sessionId, runId, { status: 'cancelled', message: 'The run was cancelled' }, { caller })
    if (!ended) return null
    if (ended.finished) {
      running.get(keyOf(sessionId, runId))?.controller.abort(new Error('The run was cancelled'))
      options.announce(sessionId)
    }
    return ended.run
  }

  /**
   * The run a start with `?waitMs` answers: at its first change (a progress value, or its end),
   * or after `waitMs` as it is then. A quick step's end is the record its finish wrote, with no
   * read of the store.
   */
  async function firstChange(
    sessionId: string,
    started: RunRecord,
    caller: Caller,
    done: Promise<RunFinished | null>,
    waitMs: number,
  ): Promise<RunRecord> {
    let stop = () => {}
    const changed = new Promise<null>((resolve) => {
      const timer = setTimeout(() => resolve(null), waitMs)
      const stopListening = options.listen(sessionId, () => resolve(null))
      stop = () => {
        clearTimeout(timer)
        stopListening()
      }
    })
    const finished = await Promise.race([done, changed]).finally(stop)
    if (finished) return finished.run
    return (await store.getRun(sessionId, started.runId, { caller })) ?? started
  }

  /** The run once its `rev` is above `after`, or after `waitMs` as it is then (null: no such run). */
  async function wait(sessionId: string, runId: string, caller: Caller, after: number, waitMs: number): Promise<RunRecord | null> {
    const until = Date.now() + waitMs
    for (;;) {
      const run = await store.getRun(sessionId, runId, { caller })
      if (!run || run.rev > after || run.status !== 'running' || Date.now() >= until) return run
      // Woken by a change of the session (this process, or another server through the store's
      // watch), else every second (a store without watch shared by processes), and at the end.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(1000, until - Date.now()))
        const stop = options.listen(sessionId, done)
        function done() {
          clearTimeout(timer)
          stop()
          resolve()
        }
      })
    }
  }

  /**
   * The start of a run on a platform that freezes a function once it has answered: the answer
   * streams the record (`event: run`) as it changes, until the run ends. If the request dies
   * first, the run ends `lost`: the platform may freeze the step at any moment from then on.
   */
  function stream(sessionId: string, run: RunRecord, caller: Caller, signal: AbortSignal): Response {
    const encoder = new TextEncoder()
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (record: RunRecord, session?: unknown) =>
          controller.enqueue(
            encoder.encode(`event: run\ndata: ${JSON.stringify(session ? { run: record, session } : { run: record })}\n\n`),
          )
        const lose = () => void lost(sessionId, run.runId, 'The request that ran the step ended before the step')
        signal.addEventListener('abort', lose, { once: true })
        send(run)
        let last = run
        while (last.status === 'running' && !signal.aborted) {
          const next = await wait(sessionId, run.runId, caller, last.rev, 25_000).catch(() => null)
          if (!next) break
          if (next.rev > last.rev || next.status !== 'running') {
            const answer = await answerOf(sessionId, next, caller)
            send(answer.run, answer.session)
          }
          last = next
        }
        signal.removeEventListener('abort', lose)
        try {
          controller.close()
        } catch {
          // The request is gone.
        }
      },
    })
    return new Response(body, {
      status: 202,
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
    })
  }

  /** Ends a run this process executes `lost` (its step's signal fires). */
  async function lost(sessionId: string, runId: string, message: string): Promise<boolean> {
    running.get(keyOf(sessionId, runId))?.controller.abort(new Error(message))
    const ended = await store.finishRun(sessionId, runId, { status: 'lost', message }).catch(() => null)
    if (ended?.finished) options.announce(sessionId)
    return ended?.finished ?? false
  }

  return {
    start,
    firstChange,
    cancel,
    wait,
    stream,
    answerOf,
    /** The runs this process executes now. */
    get size() {
      return running.size
    },
    /** Ends every run this process executes `lost` (the server stops), one log line each. */
    async close(): Promise<void> {
      const ending = [...running.values()].map(async ({ sessionId, runId, step }) => {
        if (await lost(sessionId, runId, 'The server stopped while the step ran'))
          options.log(`[workflow-session] run ${runId} of step "${step}" in session ${sessionId} ended lost: the server stopped`)
      })
      await Promise.all(ending)
    },
  }
}
