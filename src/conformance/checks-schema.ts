import {
  type Answer,
  type Backend,
  brief,
  type Check,
  CONFORMANCE_SCHEMA_VERSION,
  expectError,
  expectSame,
  expectStatus,
  fail,
  SCHEMA_HINT,
} from './backend.js'
import { expectUnchanged, refused } from './checks-sessions.js'

// Schema versions (docs/protocol.md, "Schema versions"), against a backend that declares the
// conformance schema while it is tested: version 2, whose one migration renames `conformance_v1`
// to `conformance_v2`. A patch from an older client is moved by that migration before it is
// merged; one from a newer client, and a run or a step call in any version but the server's, is
// 409 schema_mismatch. Bodies sent as strings carry no `schemaVersion` at all (version 1): the
// backend's helpers add the conformance schema's version only to objects.

const CURRENT = CONFORMANCE_SCHEMA_VERSION
const NEWER = CURRENT + 1
/** Not a schema version: anything but an integer from 1 to 2^53 − 1. */
const BAD_VERSIONS = [0, -1, 1.5, '2', true, null, 2 ** 53]

/** A snapshot's schema version must be the conformance schema's (absent would say 1). */
function expectCurrentSchema(snapshot: { schemaVersion?: unknown } | undefined, what: string): void {
  const version = snapshot?.schemaVersion
  if (version === CURRENT) return
  const got = version === undefined ? 'none (schema version 1)' : brief(version)
  fail(`"schemaVersion" of ${what}: expected ${CURRENT}, got ${got}${SCHEMA_HINT}`)
}

/** 409 schema_mismatch naming the server's schema version, the one the client must be updated to. */
function expectMismatch(answer: Answer, hint: string): void {
  expectError(answer, 409, 'schema_mismatch', hint)
  const named = answer.body.error.schemaVersion
  if (named !== CURRENT)
    fail(`${answer.request}${hint}: error.schemaVersion: expected ${CURRENT} (the server's schema version), got ${brief(named)}`)
}

/** A patch must answer 200 with these variables. */
async function expectPatched(b: Backend, sessionId: string, patch: object, variables: object, what: string): Promise<Answer> {
  const answer = await b.patch(sessionId, patch)
  expectStatus(answer, 200, ` for ${what}`)
  expectSame(answer.body.variables, variables, `the variables after ${what}`)
  return answer
}

const runIdOf = (b: Backend) => `run-${b.newId()}`

export const schemaChecks: Check[] = [
  {
    name: `a snapshot carries "schemaVersion": ${CURRENT}, the version of the conformance schema, in a patch's answer and in a GET`,
    async run(b) {
      const id = b.newId()
      const patched = await b.patch(id, { variables: { kept: 1 }, schemaVersion: CURRENT })
      expectStatus(patched, 200)
      expectCurrentSchema(patched.body, "a patch's answer")
      const read = await b.get(id)
      expectStatus(read, 200)
      expectCurrentSchema(read.body, 'GET after the patch')
    },
  },
  {
    name: 'a patch from an older client (without schemaVersion, or 1) is moved by the migration: conformance_v1 is set, and deleted, as conformance_v2',
    async run(b) {
      const { sessionId } = await b.seeded({ kept: 1 })
      await expectPatched(
        b,
        sessionId,
        { variables: { conformance_v1: 'a' } },
        { kept: 1, conformance_v2: 'a' },
        'a patch without schemaVersion (1) that sets conformance_v1',
      )
      await expectPatched(
        b,
        sessionId,
        { variables: { conformance_v1: 'b' }, schemaVersion: 1 },
        { kept: 1, conformance_v2: 'b' },
        'a patch in schema version 1 that sets conformance_v1',
      )
      const last = await expectPatched(
        b,
        sessionId,
        { deleted: ['conformance_v1'], schemaVersion: 1 },
        { kept: 1 },
        'a patch in schema version 1 that deletes conformance_v1',
      )
      expectSame((await b.get(sessionId)).body, last.body, 'GET after the patches')
    },
  },
  {
    name: `a patch in the server's schema version (${CURRENT}) is not migrated again: conformance_v1 keeps its name`,
    async run(b) {
      const id = b.newId()
      const patch = (variables: object, deleted: string[] = []) => ({ variables, deleted, schemaVersion: CURRENT })
      await expectPatched(b, id, patch({ conformance_v2: 'old' }), { conformance_v2: 'old' }, 'a patch in schema version 2')
      await expectPatched(
        b,
        id,
        patch({ conformance_v1: 'new' }),
        { conformance_v2: 'old', conformance_v1: 'new' },
        'a patch in schema version 2 that sets conformance_v1',
      )
      await expectPatched(
        b,
        id,
        patch({}, ['conformance_v1']),
        { conformance_v2: 'old' },
        'a patch in schema version 2 that deletes conformance_v1',
      )
    },
  },
  {
    name: `a patch from a newer client (schemaVersion ${NEWER}) is 409 schema_mismatch naming the server's version, ${CURRENT}, and changes nothing`,
    async run(b) {
      const before = await b.seeded()
      const newer = { variables: { kept: 2, conformance_v2: 'x' }, schemaVersion: NEWER }
      expectMismatch(await b.patch(before.sessionId, newer), ` for a patch in schema version ${NEWER}`)
      await expectUnchanged(b, before, 'the session after a patch from a newer client')
      const missing = b.newId()
      expectMismatch(await b.patch(missing, newer), ` for a patch in schema version ${NEWER} to a missing session`)
      expectError(await b.get(missing), 404, 'not_found', ' after a refused patch to a missing session (it creates nothing)')
    },
  },
  refused(
    'a bad schemaVersion in a patch (0, -1, 1.5, "2", true, null, 2^53) is 400 invalid_patch',
    BAD_VERSIONS.map((schemaVersion) => ({ variables: { kept: 2 }, schemaVersion })),
    400,
    'invalid_patch',
  ),
  {
    name: `a step call in another schema version than the server's (none, 1, ${NEWER}) is 409 schema_mismatch and runs nothing; in ${CURRENT} it runs`,
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      const calls: Array<[body: string | object | undefined, what: string]> = [
        [undefined, 'an empty body (schema version 1)'],
        ['{"input":1}', 'a body without schemaVersion (1)'],
        [{ input: 1, schemaVersion: 1 }, 'schema version 1'],
        [{ input: 1, schemaVersion: NEWER }, `schema version ${NEWER}`],
      ]
      for (const [body, what] of calls) expectMismatch(await b.run(before.sessionId, body), ` for a step call with ${what}`)
      await expectUnchanged(b, before, 'the session after refused step calls')
      const missing = b.newId()
      expectMismatch(await b.run(missing, '{"input":1}'), ' for a step call without schemaVersion on a missing session')
      expectError(await b.get(missing), 404, 'not_found', ' after a refused step call on a missing session (it creates nothing)')
      const ran = await b.run(before.sessionId, { input: 1, schemaVersion: CURRENT })
      expectStatus(ran, 200, ` for a step call in schema version ${CURRENT}`)
      expectSame(ran.body.session.variables, { kept: 1, conformance_echo: 1 }, 'the variables after a step call in schema version 2')
      expectCurrentSchema(ran.body.session, "a step call's session")
    },
  },
  {
    name: `a run start in another schema version than the server's (none, 1, ${NEWER}) is 409 schema_mismatch and starts nothing; in ${CURRENT} it starts`,
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      const { sessionId } = before
      // One run id for every start: a refused start must leave it unused.
      const start = { runId: runIdOf(b), step: b.step, input: { n: 1 } }
      const starts: Array<[body: string | object, what: string]> = [
        [JSON.stringify(start), 'without schemaVersion (1)'],
        [{ ...start, schemaVersion: 1 }, 'in schema version 1'],
        [{ ...start, schemaVersion: NEWER }, `in schema version ${NEWER}`],
      ]
      for (const [body, what] of starts) expectMismatch(await b.startRun(sessionId, body), ` for a run start ${what}`)
      const run = await b.call('GET', `/${sessionId}/runs/${start.runId}`)
      expectError(run, 404, 'not_found', ' for the run id of the refused starts (they start nothing)')
      await expectUnchanged(b, before, 'the session after refused run starts')
      const started = await b.startRun(sessionId, { ...start, schemaVersion: CURRENT })
      expectStatus(started, 202, ` for a run start in schema version ${CURRENT} with the run id of the refused ones`)
    },
  },
  {
    name: 'a bad schemaVersion (0, -1, 1.5, "2", true, null, 2^53) is 400: invalid_run in a run start, invalid_patch in a step call; nothing runs',
    needs: 'step',
    async run(b) {
      const before = await b.seeded()
      for (const schemaVersion of BAD_VERSIONS) {
        const shown = ` with "schemaVersion": ${brief(schemaVersion)}`
        const start = { runId: runIdOf(b), step: b.step, schemaVersion }
        expectError(await b.startRun(before.sessionId, start), 400, 'invalid_run', ` for a run start${shown}`)
        expectError(await b.run(before.sessionId, { input: 1, schemaVersion }), 400, 'invalid_patch', ` for a step call${shown}`)
      }
      await expectUnchanged(b, before, 'the session after run starts and step calls with a bad schemaVersion')
    },
  },
  {
    name: "another user's session is 404 not_found whatever the schemaVersion of a patch, a run start or a step call: the owner is checked first",
    needs: ['step', 'user'],
    async run(b) {
      const mine = await b.seeded({ kept: 1 }, 'user')
      // Only when the caller is not the user (someone else, or nobody): else there is no other user.
      if ((await b.get(mine.sessionId, 'caller')).status !== 404) return
      const other = { as: 'caller' } as const
      const hint = (what: string) => ` for another caller's ${what} (the owner comes before the schema version)`
      const patch = { variables: { kept: 2 }, schemaVersion: NEWER }
      expectError(await b.patch(mine.sessionId, patch, other), 404, 'not_found', hint(`patch in schema version ${NEWER}`))
      expectError(await b.run(mine.sessionId, '{"input":1}', other), 404, 'not_found', hint('step call without schemaVersion'))
      const start = { runId: runIdOf(b), step: b.step, schemaVersion: 1 }
      expectError(await b.startRun(mine.sessionId, start, 0, other), 404, 'not_found', hint('run start in schema version 1'))
      const after = await b.get(mine.sessionId, 'user')
      expectSame(after.body, mine, "the user's session after another caller's requests (an error changes nothing)")
    },
  },
]
