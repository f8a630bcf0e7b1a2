import { brief, type Check, expectError, expectSame, expectStatus, fail } from './backend.js'
import { expectUnchanged } from './checks-sessions.js'

// These run the protocol's conformance step (docs/protocol.md, "The conformance step"): it
// answers { input, seen } and sets `conformance_echo` to its input, or fails with input.fail.

const FAILURE = 'conformance: this step fails on purpose'

/** The step path, through the conformance step; skipped when the backend does not register it. */
export const stepChecks: Check[] = [
  {
    name: 'a run sees every patch answered before it, and its output echoes the input as given',
    needs: 'step',
    async run(b) {
      const variables = { kept: 1, list: [1, { a: null }], text: 'é😀' }
      const { sessionId } = await b.seeded(variables)
      const input = { b: [1, 2, { c: true }], a: 'x', nested: { z: 1, y: null } }
      const answer = await b.run(sessionId, { input })
      expectStatus(answer, 200)
      expectSame(answer.body.output, { input, seen: variables }, 'the output { input, seen } of a run right after a patch')
    },
  },
  {
    name: 'what a step writes is merged as one change: conformance_echo is set, the other variables stay, version +1',
    needs: 'step',
    async run(b) {
      const { sessionId } = await b.seeded()
      const first = await b.run(sessionId, { input: { n: 1 } })
      expectStatus(first, 200)
      const after = [first.body.session.variables, first.body.session.version]
      expectSame(after, [{ kept: 1, conformance_echo: { n: 1 } }, 2], "the step's changes merged: [variables, version] after a run")
      expectSame((await b.get(sessionId)).body, first.body.session, 'GET after the run')
      // No input (an empty body would be in schema version 1: see the schema checks).
      const second = await b.run(sessionId, {})
      expectStatus(second, 200, ' for a run without input')
      expectSame(second.body.output, { input: null, seen: { kept: 1, conformance_echo: { n: 1 } } }, 'the output of a run without input')
      const then = [second.body.session.variables, second.body.session.version]
      expectSame(then, [{ kept: 1, conformance_echo: null }, 3], "the step's changes merged: [variables, version] after a second run")
    },
  },
  {
    name: 'a run on a session that does not exist sees no variables, and what it writes creates the session at version 1',
    needs: 'step',
    async run(b) {
      const id = b.newId()
      const answer = await b.run(id, { input: 7 })
      expectStatus(answer, 200)
      expectSame(answer.body.output, { input: 7, seen: {} }, 'the output of a run on a missing session')
      expectSame(
        [answer.body.session.sessionId, answer.body.session.variables, answer.body.session.version],
        [id, { conformance_echo: 7 }, 1],
        'the session a run created',
      )
      expectSame((await b.get(id)).body, answer.body.session, 'GET after the run')
    },
  },
  {
    name: 'a failing step is 500 step_failed with its own message, and stores nothing',
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      const answer = await b.run(before.sessionId, { input: { fail: FAILURE } })
      expectError(answer, 500, 'step_failed')
      const message = answer.body.error.message
      if (message !== FAILURE) fail(`a failing step's message: expected ${JSON.stringify(FAILURE)}, got ${brief(message)}`)
      await expectUnchanged(b, before, 'the session after a failing step (it stores nothing)')
      const missing = b.newId()
      expectError(await b.run(missing, { input: { fail: FAILURE } }), 500, 'step_failed')
      expectError(await b.get(missing), 404, 'not_found', ' after a failing run on a missing session (it stores nothing)')
    },
  },
  {
    name: 'a run body that is not empty must be application/json: 415 unsupported_media_type',
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      expectError(await b.run(before.sessionId, '{"input":1}', { contentType: 'text/plain' }), 415, 'unsupported_media_type')
      await expectUnchanged(b, before)
    },
  },
  {
    name: 'an empty run with the content type of an HTML form (form-urlencoded, multipart, text/plain) is 415: no cross-site form runs a step',
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      for (const contentType of ['application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'text/plain']) {
        expectError(await b.run(before.sessionId, '', { contentType }), 415, 'unsupported_media_type', ` (${contentType})`)
      }
      await expectUnchanged(b, before)
    },
  },
]
