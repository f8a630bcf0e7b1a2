import { describe, expect, it } from 'vitest'
import { memoryStore, type Step, StepError } from '../../src/server/index.js'
import { ID, setup, streamText } from './helpers.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const RUNS = `/api/session/${ID}/runs`

/** A step that waits until `release()` (or its signal), telling what it saw. */
function heldStep() {
  let release!: () => void
  const released = new Promise<void>((resolve) => (release = resolve))
  const seen: { aborted: boolean; calls: number } = { aborted: false, calls: 0 }
  const step: Step = async ({ signal }) => {
    seen.calls++
    await Promise.race([released, new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))])
    seen.aborted = signal.aborted
    return { output: 'done', variables: { held: 'merged' } }
  }
  return { step, release, seen }
}

/** Polls until `check` holds (a run ends in the background). */
async function until(check: () => Promise<boolean>, ms = 5000) {
  const end = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > end) throw new Error('timed out waiting')
    await sleep(10)
  }
}

describe('runs over the handler', () => {
  it('starts a run (202), answers the same run for the same id (200), and runs the step once', async () => {
    const held = heldStep()
    const { call } = setup({ steps: { held: held.step } })
    const start = { runId: 'run-a000001', step: 'held', input: { n: 1 } }
    const first = await call('POST', RUNS, start)
    expect(first.status).toBe(202)
    expect(first.body.run).toMatchObject({ runId: 'run-a000001', step: 'held', status: 'running', input: { n: 1 }, rev: 1 })
    const again = await Promise.all([call('POST', RUNS, start), call('POST', RUNS, start)])
    expect(again.map((answer) => answer.status)).toEqual([200, 200])
    held.release()
    const ended = await call('GET', `${RUNS}/run-a000001?after=1&waitMs=5000`)
    expect(ended.body.run).toMatchObject({ status: 'succeeded', output: 'done', version: 2, rev: 2 })
    // A succeeded run's answer carries the session after its changes.
    expect(ended.body.session).toMatchObject({ version: 2, variables: { held: 'merged' } })
    expect(held.seen.calls).toBe(1)
    expect((await call('POST', RUNS, start)).body.run.status).toBe('succeeded')
    expect(held.seen.calls).toBe(1)
  })

  it('waits for the end with ?waitMs on the start: a quick step answers in one request', async () => {
    const { call } = setup({ steps: { quick: () => ({ output: 42, variables: { q: true } }) } })
    const answer = await call('POST', `${RUNS}?waitMs=5000`, { runId: 'run-quick01', step: 'quick' })
    expect(answer.status).toBe(202)
    expect(answer.body.run).toMatchObject({ status: 'succeeded', output: 42 })
    expect(answer.body.session.variables).toEqual({ q: true })
  })

  it('refuses bad starts with the protocol errors and changes nothing', async () => {
    const { call, store } = setup({ steps: { s: () => ({}) } })
    expect((await call('POST', RUNS, { runId: 'short', step: 's' })).body.error.code).toBe('invalid_run')
    expect((await call('POST', RUNS, { runId: 'run-ok-0001' })).body.error.code).toBe('invalid_run')
    expect((await call('POST', RUNS, [])).body.error.code).toBe('invalid_run')
    expect(await call('POST', RUNS, { runId: 'run-ok-0001', step: 'nope' })).toMatchObject({
      status: 404,
      body: { error: { code: 'unknown_step' } },
    })
    expect((await call('POST', RUNS, { runId: 'run-ok-0001', step: 's', input: '\ud800' })).body.error.code).toBe('invalid_patch')
    expect((await call('POST', RUNS, 'not json')).body.error.code).toBe('invalid_json')
    expect((await call('POST', `${RUNS}?waitMs=99999`, { runId: 'run-ok-0001', step: 's' })).body.error.code).toBe('bad_request')
    expect(await store.get(ID)).toBeNull()
  })

  it('cancels a running run: its signal fires, it ends cancelled, and nothing it returns is merged', async () => {
    const held = heldStep()
    const { call, store } = setup({ steps: { held: held.step } })
    await call('POST', RUNS, { runId: 'run-cancel1', step: 'held' })
    const cancelled = await call('POST', `${RUNS}/run-cancel1/cancel`)
    expect(cancelled.body.run).toMatchObject({ status: 'cancelled', error: { code: 'cancelled' }, version: null })
    await until(async () => held.seen.aborted)
    await sleep(20)
    expect((await store.get(ID))!.variables).toEqual({})
    // A finished run is answered as it is.
    expect((await call('POST', `${RUNS}/run-cancel1/cancel`)).body.run).toEqual(cancelled.body.run)
  })

  it('ends a step past its time limit timed_out (per step, and handler-wide), merging nothing', async () => {
    const held = heldStep()
    const { call, store } = setup({ steps: { held: { run: held.step, timeoutMs: 50 }, wide: heldStep().step }, runTimeoutMs: 80 })
    await call('POST', RUNS, { runId: 'run-time-01', step: 'held' })
    await call('POST', RUNS, { runId: 'run-time-02', step: 'wide' })
    const one = await call('GET', `${RUNS}/run-time-01?after=1&waitMs=3000`)
    expect(one.body.run).toMatchObject({ status: 'timed_out', error: { code: 'timed_out' } })
    const two = await call('GET', `${RUNS}/run-time-02?after=1&waitMs=3000`)
    expect(two.body.run.status).toBe('timed_out')
    expect(held.seen.aborted).toBe(true)
    expect((await store.get(ID))!.variables).toEqual({})
  })

  it('a StepError ends the run failed with its message and is not logged; another error is logged once, without internals', async () => {
    const { call, errors } = setup({
      steps: {
        refuse: () => {
          throw new StepError('Add a card first')
        },
        crash: () => {
          throw new Error('secret internals')
        },
      },
    })
    const refused = await call('POST', `${RUNS}?waitMs=3000`, { runId: 'run-fail-01', step: 'refuse' })
    expect(refused.body.run).toMatchObject({ status: 'failed', error: { code: 'step_failed', message: 'Add a card first' } })
    expect(errors).toEqual([])
    const crashed = await call('POST', `${RUNS}?waitMs=3000`, { runId: 'run-fail-02', step: 'crash' })
    expect(crashed.body.run).toMatchObject({ status: 'failed', error: { code: 'step_failed', message: 'The step failed' } })
    expect(errors).toHaveLength(1)
    // The synchronous run does not log a StepError either.
    expect((await call('POST', `/api/session/${ID}/run/refuse`)).body.error.message).toBe('Add a card first')
    expect(errors).toHaveLength(1)
  })

  it('refuses what a variable could not hold: an input or a progress value that is not JSON, an output over the size limit', async () => {
    const { call, errors } = setup({
      maxBytes: 2048,
      steps: {
        big: () => ({ output: 'x'.repeat(3000) }),
        nan: ({ progress }) => {
          try {
            progress(Number.NaN)
          } catch (error) {
            return { output: (error as Error).message }
          }
          return { output: 'accepted' }
        },
      },
    })
    expect((await call('POST', RUNS, { runId: 'run-size-001', step: 'big', input: '\ud800' })).body.error.code).toBe('invalid_patch')
    const big = await call('POST', `${RUNS}?waitMs=3000`, { runId: 'run-size-002', step: 'big' })
    expect(big.body.run).toMatchObject({
      status: 'failed',
      error: { code: 'step_failed', message: 'Step "big" returned an output over 2048 bytes' },
    })
    expect(errors).toHaveLength(1)
    const nan = await call('POST', `${RUNS}?waitMs=3000`, { runId: 'run-size-003', step: 'nan' })
    expect(nan.body.run.output).toMatch(/^progress\(\): the value /)
  })

  it('stores progress coalesced: 1,000 calls in 300 ms become a handful of revs, the last value kept', async () => {
    const { call } = setup({
      steps: {
        busy: async ({ progress }) => {
          for (let i = 1; i <= 1000; i++) {
            progress({ done: i })
            if (i % 100 === 0) await sleep(30)
          }
          return { output: 'ok' }
        },
      },
    })
    const started = await call('POST', `${RUNS}?waitMs=5000`, { runId: 'run-prog-01', step: 'busy' })
    // A start with ?waitMs answers at the run's first change: here its first progress value.
    expect(started.body.run).toMatchObject({ status: 'running', rev: 2, progress: { done: expect.any(Number) } })
    await until(async () => (await call('GET', `${RUNS}/run-prog-01`)).body.run.status !== 'running')
    const { run } = (await call('GET', `${RUNS}/run-prog-01`)).body
    expect(run).toMatchObject({ status: 'succeeded', progress: { done: 1000 } })
    // rev: 1 at the start, one per stored progress value, one at the end; at most 4 values a second.
    expect(run.rev).toBeGreaterThanOrEqual(3)
    expect(run.rev).toBeLessThanOrEqual(6)
  })

  it('a long poll answers as soon as the run changes, not at its wait', async () => {
    const held = heldStep()
    const { call } = setup({ steps: { held: held.step } })
    await call('POST', RUNS, { runId: 'run-poll-01', step: 'held' })
    const started = Date.now()
    const polled = call('GET', `${RUNS}/run-poll-01?after=1&waitMs=20000`)
    await sleep(100)
    held.release()
    expect((await polled).body.run.status).toBe('succeeded')
    expect(Date.now() - started).toBeLessThan(5000)
    // Nothing newer: the answer comes after the wait, as it is.
    const quiet = await call('GET', `${RUNS}/run-poll-01?after=2&waitMs=50`)
    expect(quiet.body.run.rev).toBe(2)
  })

  it('joins a second start of a running step by default, or refuses it with 409 run_in_progress', async () => {
    const held = heldStep()
    const joined = setup({ steps: { held: held.step } })
    await joined.call('POST', RUNS, { runId: 'run-join-01', step: 'held' })
    const second = await joined.call('POST', RUNS, { runId: 'run-join-02', step: 'held' })
    expect(second).toMatchObject({ status: 200, body: { run: { runId: 'run-join-01' } } })
    held.release()
    const refusing = setup({ steps: { held: heldStep().step }, concurrentRuns: 'refuse' })
    await refusing.call('POST', RUNS, { runId: 'run-join-01', step: 'held' })
    expect(await refusing.call('POST', RUNS, { runId: 'run-join-02', step: 'held' })).toMatchObject({
      status: 409,
      body: { error: { code: 'run_in_progress' } },
    })
    await refusing.handler.close()
  })

  it('keeps another user out of every run endpoint, and answers a run id of another session like an unknown one', async () => {
    const held = heldStep()
    const { call } = setup({ steps: { held: held.step }, authorize: (request) => request.headers.get('x-user') })
    const ada = { 'x-user': 'ada' }
    const bob = { 'x-user': 'bob' }
    await call('POST', RUNS, { runId: 'run-own-001', step: 'held' }, ada)
    const unknown = await call('GET', `${RUNS}/run-unknown1`, undefined, ada)
    expect(unknown).toMatchObject({ status: 404, body: { error: { code: 'not_found', message: 'No such run' } } })
    for (const [method, path] of [
      ['GET', RUNS],
      ['GET', `${RUNS}/run-own-001`],
      ['POST', `${RUNS}/run-own-001/cancel`],
    ] as const) {
      const answer = await call(method, path, undefined, bob)
      const message = path === RUNS ? 'No such session' : 'No such run'
      expect(answer).toMatchObject({ status: 404, body: { error: { code: 'not_found', message } } })
    }
    expect((await call('POST', RUNS, { runId: 'run-bob-001', step: 'held' }, bob)).status).toBe(404)
    // The same run id in another session of ada's: unknown there.
    await call('POST', '/api/session/session-0002', { variables: {} }, ada)
    expect(await call('GET', '/api/session/session-0002/runs/run-own-001', undefined, ada)).toEqual(unknown)
    expect((await call('GET', `${RUNS}/run-own-001`, undefined, ada)).body.run.status).toBe('running')
    held.release()
  })

  it('sends each run change in the change feed: running, progress and the end', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const { call, handler } = setup({
      steps: {
        slow: async ({ progress }) => {
          progress({ step: 1 })
          await released
          return { output: 'fine' }
        },
      },
    })
    await call('POST', `/api/session/${ID}`, { variables: { a: 1 } })
    const controller = new AbortController()
    const response = await handler(new Request(`http://localhost/api/session/${ID}/events`, { signal: controller.signal }))
    const stream = streamText(response)
    await stream.readUntil('event: snapshot')
    await call('POST', RUNS, { runId: 'run-feed-01', step: 'slow' })
    await stream.readUntil('"progress":{"step":1}')
    release()
    await stream.readUntil('"status":"succeeded"')
    const runs = stream.text
      .split('\n\n')
      .filter((event) => event.startsWith('event: run'))
      .map((event) => JSON.parse(event.slice(event.indexOf('data: ') + 6)) as { rev: number })
    expect(runs.map((run) => run.rev)).toEqual([...runs.map((run) => run.rev)].sort((a, b) => a - b))
    controller.abort()
    await handler.close()
  })

  it('a patch costs an open change stream one read: the runs are listed again only after a run was announced', async () => {
    const inner = memoryStore()
    let listings = 0
    const store = { ...inner, listRuns: (...args: Parameters<typeof inner.listRuns>) => (listings++, inner.listRuns(...args)) }
    const { call, handler } = setup({ store, steps: { quick: () => ({ output: 1 }) } })
    await call('POST', `/api/session/${ID}`, { variables: { a: 0 } })
    const controller = new AbortController()
    const response = await handler(new Request(`http://localhost/api/session/${ID}/events`, { signal: controller.signal }))
    const stream = streamText(response)
    await stream.readUntil('event: snapshot')
    for (let i = 1; i <= 10; i++) await call('POST', `/api/session/${ID}`, { variables: { a: i } })
    await stream.readUntil('"a":10')
    expect(listings).toBe(1) // when the stream opened
    await call('POST', `${RUNS}?waitMs=3000`, { runId: 'run-feed-02', step: 'quick' })
    await stream.readUntil('"status":"succeeded"')
    expect(listings).toBeGreaterThan(1)
    controller.abort()
    await handler.close()
  })

  it('streams the run to its start on a platform that freezes after the answer, and ends it lost if that request dies', async () => {
    let release!: () => void
    const released = new Promise<void>((resolve) => (release = resolve))
    const aborted: boolean[] = []
    const { handler, store } = setup({
      runsInRequest: true,
      steps: {
        slow: async ({ signal, runId }) => {
          const stopped = new Promise((resolve) => signal.addEventListener('abort', resolve))
          // The first run ends when released; the second only when its signal fires.
          await Promise.race(runId === 'run-stream1' ? [released, stopped] : [stopped])
          aborted.push(signal.aborted)
          return { output: 'streamed' }
        },
      },
    })
    const post = (runId: string, signal?: AbortSignal) =>
      handler(
        new Request(`http://localhost${RUNS}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ runId, step: 'slow' }),
          ...(signal && { signal }),
        }),
      )
    const streamed = await post('run-stream1')
    expect(streamed.headers.get('content-type')).toContain('text/event-stream')
    setTimeout(release, 50)
    const text = await streamed.text()
    expect(text).toContain('"status":"running"')
    expect(text).toContain('"status":"succeeded"')
    expect(text).toContain('"output":"streamed"')

    const controller = new AbortController()
    const dying = await post('run-stream2', controller.signal)
    expect(dying.status).toBe(202)
    controller.abort()
    await until(async () => (await store.getRun(ID, 'run-stream2'))?.status === 'lost')
    expect(aborted).toEqual([false, true])
  })

  it('a shutdown ends the runs this server executes lost, one log line each', async () => {
    const lines: string[] = []
    const held = heldStep()
    const store = memoryStore()
    const { call, handler } = setup({ store, steps: { held: held.step }, log: (line) => lines.push(line) })
    await call('POST', RUNS, { runId: 'run-down-01', step: 'held' })
    await handler.close()
    expect(await store.getRun(ID, 'run-down-01')).toMatchObject({ status: 'lost', error: { code: 'lost' } })
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('run-down-01')
    expect(held.seen.aborted).toBe(true)
  })
})
