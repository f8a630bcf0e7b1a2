import { describe, expect, it } from 'vitest'
import type { StoreOptions } from '../../src/server/index.js'
import { kinds, openKind } from './store-kinds.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(kinds)('$name store: runs', (kind) => {
  const open = async (options?: StoreOptions, place?: string) => openKind(kind, options, place)

  it('starts a run once per id: the record, the variables the step reads, and the same run for a second start', async () => {
    const { store } = await open()
    await store.apply('runs-session-1', { variables: { topic: 'tides' } })
    const first = await store.startRun('runs-session-1', { runId: 'run-000001', step: 'summarize', input: { pages: 3 } })
    expect(first.created).toBe(true)
    expect(first.variables).toEqual({ topic: 'tides' })
    expect(first.run).toMatchObject({
      runId: 'run-000001',
      step: 'summarize',
      status: 'running',
      input: { pages: 3 },
      progress: null,
      output: null,
      error: null,
      finishedAt: null,
      readVersion: 1,
      version: null,
      rev: 1,
    })
    const again = await store.startRun('runs-session-1', { runId: 'run-000001', step: 'other', input: 'ignored' })
    expect(again).toEqual({ run: first.run, created: false, variables: null })
    // The session is unchanged by a run's record.
    expect((await store.get('runs-session-1'))!.version).toBe(1)
  })

  it('makes a missing session for a run (empty, version 1, the caller its owner) and keeps other users out', async () => {
    const { store } = await open()
    const { run, variables } = await store.startRun('runs-session-2', { runId: 'run-000002', step: 's' }, { caller: { userId: 'ada' } })
    expect(variables).toEqual({})
    expect(run.readVersion).toBe(1)
    expect(await store.get('runs-session-2')).toMatchObject({ version: 1, userId: 'ada', variables: {} })
    const bob = { caller: { userId: 'bob' } }
    await expect(store.startRun('runs-session-2', { runId: 'run-000003', step: 's' }, bob)).rejects.toMatchObject({ code: 'not_found' })
    expect(await store.getRun('runs-session-2', 'run-000002', bob)).toBeNull()
    expect(await store.listRuns('runs-session-2', bob)).toBeNull()
    expect(await store.finishRun('runs-session-2', 'run-000002', { status: 'cancelled', message: 'no' }, bob)).toBeNull()
    expect((await store.getRun('runs-session-2', 'run-000002'))!.status).toBe('running')
    // A run id of another session is an unknown run.
    await store.apply('runs-session-3', { variables: {} })
    expect(await store.getRun('runs-session-3', 'run-000002')).toBeNull()
  })

  it('joins a running run of the same step, or refuses a second one, atomically', async () => {
    const { store } = await open()
    const starts = await Promise.all(
      Array.from({ length: 8 }, (_, i) => store.startRun('runs-session-4', { runId: `run-join-${i}0000`, step: 'slow' })),
    )
    expect(starts.filter((start) => start.created)).toHaveLength(1)
    const runIds = new Set(starts.map((start) => start.run.runId))
    expect(runIds.size).toBe(1)
    await expect(store.startRun('runs-session-4', { runId: 'run-refused1', step: 'slow', concurrentRuns: 'refuse' })).rejects.toMatchObject(
      {
        code: 'run_in_progress',
      },
    )
    // Another step runs beside it.
    expect((await store.startRun('runs-session-4', { runId: 'run-other01', step: 'fast' })).created).toBe(true)
  })

  it('ends a run once: its changes merged in the same step with one version bump, and a later end changes nothing', async () => {
    const { store } = await open()
    await store.apply('runs-session-5', { variables: { a: 1 } })
    await store.startRun('runs-session-5', { runId: 'run-end-001', step: 's' })
    const [done, cancel] = await Promise.all([
      store.finishRun('runs-session-5', 'run-end-001', { status: 'succeeded', output: { ok: true }, change: { variables: { b: 2 } } }),
      store.finishRun('runs-session-5', 'run-end-001', { status: 'cancelled', message: 'stop' }),
    ])
    // Exactly one of the two ended it.
    expect([done!.finished, cancel!.finished].filter(Boolean)).toHaveLength(1)
    const final = (await store.getRun('runs-session-5', 'run-end-001'))!
    const snapshot = (await store.get('runs-session-5'))!
    if (done!.finished) {
      expect(final).toMatchObject({ status: 'succeeded', output: { ok: true }, version: 2, rev: 2 })
      expect(snapshot).toMatchObject({ version: 2, variables: { a: 1, b: 2 } })
      expect(done!.session!.snapshot.version).toBe(2)
    } else {
      expect(final).toMatchObject({ status: 'cancelled', error: { code: 'cancelled', message: 'stop' }, version: null })
      expect(snapshot).toMatchObject({ version: 1, variables: { a: 1 } })
    }
    expect(final.finishedAt).not.toBeNull()
    // A finished run never changes again.
    const late = await store.finishRun('runs-session-5', 'run-end-001', { status: 'failed', message: 'late' })
    expect(late).toMatchObject({ finished: false, run: final })
    expect(await store.touchRun('runs-session-5', 'run-end-001', { value: 1 })).toEqual(final)
  })

  it('stores progress (rev grows) and renews the heartbeat (rev stays)', async () => {
    const { store } = await open()
    const { run } = await store.startRun('runs-session-6', { runId: 'run-prog-01', step: 's' })
    await sleep(5)
    const beat = (await store.touchRun('runs-session-6', 'run-prog-01'))!
    expect(beat.rev).toBe(1)
    expect(Date.parse(beat.heartbeatAt)).toBeGreaterThan(Date.parse(run.heartbeatAt))
    const progressed = (await store.touchRun('runs-session-6', 'run-prog-01', { value: { done: 1, of: 3 } }))!
    expect(progressed).toMatchObject({ rev: 2, progress: { done: 1, of: 3 } })
    expect(await store.getRun('runs-session-6', 'run-prog-01')).toEqual(progressed)
    expect(await store.touchRun('runs-session-6', 'no-such-run')).toBeNull()
  })

  it('ends a run whose heartbeat is too old `lost` when it is read, and a start of its step then begins anew', async () => {
    const { store } = await open({ runLostAfterMs: 50 })
    await store.startRun('runs-session-7', { runId: 'run-lost-01', step: 's' })
    await sleep(80)
    const lost = (await store.getRun('runs-session-7', 'run-lost-01'))!
    expect(lost).toMatchObject({ status: 'lost', error: { code: 'lost' }, rev: 2 })
    await store.startRun('runs-session-7', { runId: 'run-lost-02', step: 's' })
    await sleep(80)
    // A start finds the old running one of its step lost, and starts.
    const next = await store.startRun('runs-session-7', { runId: 'run-lost-03', step: 's' })
    expect(next.created).toBe(true)
    expect((await store.getRun('runs-session-7', 'run-lost-02'))!.status).toBe('lost')
  })

  it('lists runs newest first, keeps the 50 newest finished ones, and deletes runs with their session', async () => {
    const { store } = await open()
    for (let i = 0; i < 55; i++) {
      const runId = `run-many-${String(i).padStart(3, '0')}`
      await store.startRun('runs-session-8', { runId, step: 's' })
      await store.finishRun('runs-session-8', runId, { status: 'succeeded' })
    }
    await store.startRun('runs-session-8', { runId: 'run-still-01', step: 's' })
    const runs = (await store.listRuns('runs-session-8'))!
    expect(runs).toHaveLength(51)
    expect(runs[0]!.runId).toBe('run-still-01')
    expect(runs.at(-1)!.runId).toBe('run-many-005')
    await store.delete('runs-session-8')
    expect(await store.listRuns('runs-session-8')).toBeNull()
    expect(await store.getRun('runs-session-8', 'run-still-01')).toBeNull()
    // A session made again under the id has none of the old runs.
    await store.apply('runs-session-8', { variables: { again: true } })
    expect(await store.listRuns('runs-session-8')).toEqual([])
  })
})
