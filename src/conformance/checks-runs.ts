import { type Answer, type Backend, brief, type Check, expectError, expectSame, expectStatus, fail } from './backend.js'
import { expectUnchanged } from './checks-sessions.js'

// Runs (docs/protocol.md, "Runs"), through the conformance step: `{ sleepMs }` makes it take
// that long, reporting progress; `{ fail }` makes it fail.

const FAILURE = 'conformance: this step fails on purpose'
/** How long a check waits for a run's end before it fails. */
const END_WITHIN_MS = 20_000

/** The run's record from an answer about one run. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- read as the document's shape, see eslint.config.js
const runOf = (answer: Answer): any => answer.body.run

/** Long polls the run until it is no longer running; fails after {@link END_WITHIN_MS}. */
async function ended(b: Backend, sessionId: string, runId: string): Promise<Answer> {
  const until = Date.now() + END_WITHIN_MS
  for (let rev = 0; ;) {
    const answer = await b.call('GET', `/${sessionId}/runs/${runId}?after=${rev}&waitMs=5000`)
    expectStatus(answer, 200)
    if (runOf(answer).status !== 'running') return answer
    rev = runOf(answer).rev
    if (Date.now() > until) fail(`run ${runId} was still running after ${END_WITHIN_MS / 1000} s: ${brief(runOf(answer))}`)
  }
}

/** A run id unique to this check run. */
const runIdOf = (b: Backend) => `run-${b.newId()}`

export const runChecks: Check[] = [
  {
    name: 'a run starts once per id: 202, then 200 with the same run for the same id; the step runs once and its changes are merged once',
    needs: 'step',
    async run(b) {
      const { sessionId } = await b.seeded()
      const runId = runIdOf(b)
      const start = { runId, step: b.step, input: { sleepMs: 300 } }
      const first = await b.startRun(sessionId, start)
      expectStatus(first, 202, ' for a new run')
      expectSame([runOf(first).runId, runOf(first).step], [runId, b.step], 'the started run: [runId, step]')
      const again = await b.startRun(sessionId, start)
      expectStatus(again, 200, ' for a second start with the same run id')
      expectSame(runOf(again).runId, runId, 'the run a second start answers')
      const end = runOf(await ended(b, sessionId, runId))
      expectSame(
        [end.status, end.readVersion, end.version, end.error],
        ['succeeded', 1, 2, null],
        'the ended run: [status, readVersion, version, error]',
      )
      expectSame(end.output, { input: { sleepMs: 300 }, seen: { kept: 1 } }, "the run's output")
      const third = await b.startRun(sessionId, start)
      expectStatus(third, 200, ' for a start with the id of a finished run')
      const session = (await b.get(sessionId)).body
      expectSame(
        [session.version, session.variables],
        [2, { kept: 1, conformance_echo: { sleepMs: 300 } }],
        'the session after the run: [version, variables]',
      )
    },
  },
  {
    name: 'a long poll answers with a newer rev as the run goes (progress), and the end carries the session and finishedAt',
    needs: 'step',
    async run(b) {
      const { sessionId } = await b.seeded()
      const runId = runIdOf(b)
      const started = await b.startRun(sessionId, { runId, step: b.step, input: { sleepMs: 3000 } })
      expectStatus(started, 202)
      const first = runOf(started)
      if (first.status !== 'running' || first.rev < 1)
        fail(`a run of 3 s right after its start: expected running with rev >= 1, got ${brief(first)}`)
      const next = await b.call('GET', `/${sessionId}/runs/${runId}?after=${first.rev}&waitMs=10000`)
      expectStatus(next, 200)
      if (!(runOf(next).rev > first.rev)) fail(`a long poll after rev ${first.rev}: expected a newer rev, got ${brief(runOf(next))}`)
      // Nothing newer than a rev the run will not reach while it runs: the answer waits (about) the wait.
      const waitedFrom = Date.now()
      const waited = await b.call('GET', `/${sessionId}/runs/${runId}?after=${Number(runOf(next).rev) + 100000}&waitMs=1000`)
      expectStatus(waited, 200)
      if (runOf(waited).status === 'running' && Date.now() - waitedFrom < 800)
        fail(`a long poll with nothing newer answered after ${Date.now() - waitedFrom} ms, not after its wait of 1000 ms`)
      const end = await ended(b, sessionId, runId)
      if (runOf(end).finishedAt === null) fail('a finished run without finishedAt')
      if (end.body.session?.version !== 2)
        fail(`a succeeded run's answer: expected the session at version 2, got ${brief(end.body.session)}`)
      const listed = await b.call('GET', `/${sessionId}/runs`)
      expectStatus(listed, 200)
      expectSame(
        listed.body.runs.map((run: { runId: string }) => run.runId),
        [runId],
        "the session's runs",
      )
    },
  },
  {
    name: 'cancel ends a running run cancelled, for good; nothing of the step is merged',
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      const runId = runIdOf(b)
      expectStatus(await b.startRun(before.sessionId, { runId, step: b.step, input: { sleepMs: 20000 } }), 202)
      const cancelled = await b.call('POST', `/${before.sessionId}/runs/${runId}/cancel`)
      expectStatus(cancelled, 200)
      expectSame(
        [runOf(cancelled).status, runOf(cancelled).error?.code],
        ['cancelled', 'cancelled'],
        'the cancelled run: [status, error.code]',
      )
      await new Promise((resolve) => setTimeout(resolve, 500))
      const later = await b.call('GET', `/${before.sessionId}/runs/${runId}`)
      expectSame(runOf(later).status, 'cancelled', 'the run 0.5 s after its cancel')
      await expectUnchanged(b, before, 'the session after a cancelled run')
    },
  },
  {
    name: "a failing step ends its run failed with error step_failed and the step's message, storing nothing",
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      const runId = runIdOf(b)
      expectStatus(await b.startRun(before.sessionId, { runId, step: b.step, input: { fail: FAILURE } }, 5000), 202)
      const end = runOf(await ended(b, before.sessionId, runId))
      expectSame([end.status, end.error], ['failed', { code: 'step_failed', message: FAILURE }], 'the failed run: [status, error]')
      await expectUnchanged(b, before, 'the session after a failed run')
    },
  },
  {
    name: 'run errors: a bad run id or no step is 400 invalid_run, an unknown step 404 unknown_step, an unknown run 404 not_found',
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      expectError(await b.startRun(before.sessionId, { runId: 'short', step: b.step }), 400, 'invalid_run')
      expectError(await b.startRun(before.sessionId, { runId: runIdOf(b) }), 400, 'invalid_run')
      expectError(await b.startRun(before.sessionId, { runId: runIdOf(b), step: 'no_such_step_here' }), 404, 'unknown_step')
      expectError(await b.call('GET', `/${before.sessionId}/runs/${runIdOf(b)}`), 404, 'not_found')
      expectError(await b.call('POST', `/${before.sessionId}/runs/${runIdOf(b)}/cancel`), 404, 'not_found')
      await expectUnchanged(b, before)
    },
  },
  {
    name: 'a run id of another session answers exactly like an unknown one',
    needs: 'step',
    async run(b) {
      const one = await b.seeded()
      const two = await b.seeded()
      const runId = runIdOf(b)
      expectStatus(await b.startRun(one.sessionId, { runId, step: b.step }, 5000), 202)
      const unknown = await b.call('GET', `/${two.sessionId}/runs/${runIdOf(b)}`)
      const other = await b.call('GET', `/${two.sessionId}/runs/${runId}`)
      expectSame(
        [other.status, other.body],
        [unknown.status, unknown.body],
        "another session's run id, beside an unknown one: [status, body]",
      )
    },
  },
  {
    name: "another user can neither see, watch nor cancel a signed-in user's run (404 not_found, as for the session)",
    needs: ['step', 'user'],
    async run(b) {
      const mine = await b.seeded({ kept: 1 }, 'user')
      const runId = runIdOf(b)
      const started = await b.startRun(mine.sessionId, { runId, step: b.step, input: { sleepMs: 1000 } }, 0, { as: 'user' })
      expectStatus(started, 202)
      expectError(await b.call('GET', `/${mine.sessionId}/runs/${runId}`, { as: 'caller' }), 404, 'not_found', ' for another caller')
      expectError(
        await b.call('POST', `/${mine.sessionId}/runs/${runId}/cancel`, { as: 'caller' }),
        404,
        'not_found',
        ' for another caller',
      )
      expectError(await b.call('GET', `/${mine.sessionId}/runs`, { as: 'caller' }), 404, 'not_found', ' for another caller')
      const still = await b.call('GET', `/${mine.sessionId}/runs/${runId}`, { as: 'user' })
      expectSame(runOf(still).status === 'cancelled', false, "the owner's run after another caller's cancel is cancelled")
    },
  },
]
