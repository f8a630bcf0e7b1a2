import { afterAll, expect, it } from 'vitest'
import { type ConformanceOptions, type ConformanceResult, runConformance } from '../../src/conformance.js'
import { createHttpFetch } from './http-fetch.js'
import { type Flaw, type ReferenceOptions, startReferenceServer } from './reference-server.js'

// The suite is a proof only if it passes a server that keeps the protocol and fails every
// server that breaks one rule of it. Each flawed server below breaks exactly one rule; the
// phrase is what the failing check must say, so that the failure names the rule.

const USER: ConformanceOptions = { userHeaders: { 'x-user': 'conformance-user' } }
// Small sizes keep the size checks quick; the default limit is run once, on the honest server.
const SMALL = 16 * 1024

const CAUGHT_BY: Record<Flaw, string> = {
  'replay-applied-twice': 'a replay is applied once',
  'older-seq-applied': 'seq 2 after seq 3 (an older seq is not applied)',
  'seq-per-client': 'seq per (session, client)',
  'no-per-key-merge': 'per-key merge',
  'deleted-ignored': '"deleted" removes',
  'null-deletes': 'null is a value',
  'fastapi-422': 'is 400 invalid_json: POST {base}/{id} answered 422 with a body that does not match ErrorBody',
  'step-no-version-bump': "the step's changes merged",
  'step-changes-dropped': "the step's changes merged",
  'step-sees-nothing': 'the output { input, seen } of a run right after a patch',
  'step-output-without-input': 'the output { input, seen } of a run right after a patch',
  'step-failure-422': 'answered 422 {"error":{"code":"step_failed"',
  'step-failure-generic-message': "a failing step's message",
  'step-failure-partial': 'the session after a failing step (it stores nothing)',
  'list-oldest-first': 'not newest first',
  'list-to-anonymous': 'ids are never listed to strangers',
  'no-session-size-limit': 'grows the session to about 120%',
  'no-body-size-limit': `for a body of ${SMALL + 1} bytes`,
  'seq-string': 'for the body {"variables":{"kept":2},"clientId":"conformance-seq","seq":"5"}',
  'seq-fraction': 'for the body {"variables":{"kept":2},"clientId":"conformance-seq","seq":1.5}',
  'seq-boolean': 'for the body {"variables":{"kept":2},"clientId":"conformance-seq","seq":true}',
  'seq-zero': 'for the body {"variables":{"kept":2},"clientId":"conformance-seq","seq":0}',
  'updated-at-frozen': 'updatedAt did not move with an applied change',
  'updated-at-on-replay': 'updatedAt moved with a replay',
  'created-at-moves': 'createdAt moved',
  'empty-patch-bumps': 'version after an empty patch',
  'session-id-wrong-code': 'expected 400 invalid_session_id',
  'no-415': 'expected 415 unsupported_media_type',
  'form-run': 'expected 415 unsupported_media_type (application/x-www-form-urlencoded)',
  'nan-accepted': 'for the body {"variables":{"x":NaN}}',
  'name-length-utf16': 'for a name of 256 code points',
  'summary-with-variables': 'does not match the listSessions 200 body in docs/openapi.json: /sessions/0/variables: not allowed here',
  'version-as-string': 'does not match SessionAnswer in docs/openapi.json: /version: Instance type "string" is invalid',
  'unknown-step-500': 'expected 404 unknown_step',
  'delete-missing-204': 'for DELETE of a missing session',
  'depth-unlimited': 'for a value 65 levels deep',
  'lone-surrogate-accepted': 'for the body {"variables":{"text":"\\ud800"}}',
  'plain-text-404': 'with a body that is not JSON: Not Found',
  'run-started-twice': 'expected 200 for a second start with the same run id',
  'cancel-ignored': 'the cancelled run: [status, error.code]',
  'cancelled-run-merged': 'the session after a cancelled run',
  'run-oracle': "another session's run id, beside an unknown one",
  'long-poll-at-once': 'a long poll after rev',
  'version-0-start-time': "createdAt of a version-0 snapshot is not the server's current time",
  'adopt-anonymous': 'expected 401 unauthenticated for a caller without credentials',
  'adopt-no-version-bump': 'the adopted session [sessionId, variables, version]',
  'adopt-leaves-it-public': 'for a caller without credentials after the adoption',
  'adopt-own-404': "expected 200 for adopting a session that is the caller's already",
  'adopt-missing-creates': 'expected 404 not_found for a session that does not exist',
  'adopt-takes-others': "expected 404 not_found for another user's session",
  'delta-misses-a-change': 'the session made from the delta',
  'delta-ignores-lineage': "answered a delta from base 2: its createdAt is another session's",
  'delta-base-mislabeled': 'not the version the client holds',
  'no-304': "with the current version's tag answered 200",
  'if-none-match-ignored': 'expected 304 for If-None-Match',
  'if-none-match-stale': 'after the session changed',
  'no-etag': 'answered no ETag, though the backend answers deltas',
  'run-delta-stale-progress': 'the run made from its run deltas',
  'bad-base-accepted': 'expected 400 bad_request for Session-Base: 2@yesterday',
  'snapshot-without-schema-version': `"schemaVersion" of a patch's answer: expected 2, got none (schema version 1)`,
  'schema-version-ignored': 'the variables after a patch without schemaVersion (1) that sets conformance_v1',
  'current-patch-migrated': 'the variables after a patch in schema version 2 that sets conformance_v1',
  'newer-patch-accepted': 'expected 409 schema_mismatch for a patch in schema version 3',
  'mismatch-without-version': 'answered 409 with a body that does not match ErrorBody in docs/openapi.json',
  'mismatch-names-request-version': "for a patch in schema version 3: error.schemaVersion: expected 2 (the server's schema version), got 3",
  'schema-version-string': 'for the body {"variables":{"kept":2},"schemaVersion":"2"}',
  'old-client-step': 'expected 409 schema_mismatch for a step call with an empty body (schema version 1)',
  'old-client-run': 'expected 409 schema_mismatch for a run start without schemaVersion (1)',
  'run-schema-version-code': 'expected 400 invalid_run for a run start with "schemaVersion": 0',
  'schema-before-owner':
    "expected 404 not_found for another caller's patch in schema version 3 (the owner comes before the schema version)",
}

// What a flaw needs of the run to show: another user's session is one made by a caller that
// --header signs in as someone else than the user.
const RUN_WITH: Partial<Record<Flaw, ConformanceOptions>> = {
  'adopt-takes-others': { headers: { 'x-user': 'conformance-caller' } },
}

// The many runs below go through a node:http client for speed (see http-fetch.ts); the run with
// the default limit goes through Node's own fetch, as the command does.
const http = createHttpFetch()
afterAll(() => http.close())

/** A fresh reference server, the suite run once against it, the server closed. */
async function conformanceOf(
  server: ReferenceOptions,
  maxBytes = SMALL,
  options: ConformanceOptions = server.flaw ? (RUN_WITH[server.flaw] ?? {}) : {},
): Promise<ConformanceResult[]> {
  const running = await startReferenceServer({ maxBytes, ...server })
  try {
    return await runConformance(running.base, { ...USER, maxBytes, fetch: http.fetch, ...options })
  } finally {
    await running.close()
  }
}

const notPassed = (results: ConformanceResult[]) => results.filter((result) => !result.ok || result.skipped)
const said = (result: ConformanceResult) => `${result.name}: ${result.detail}`

it('passes the honest reference server with the default 1 MiB limit over fetch: nothing failed, nothing skipped', async () => {
  const server = await startReferenceServer()
  const results = await runConformance(server.base, USER).finally(() => server.close())
  expect(notPassed(results)).toEqual([])
  expect(results.length).toBeGreaterThanOrEqual(30)
})

it('passes the honest server with the limit of the flawed ones, another limit, and every key of every answer in another order', async () => {
  const runs = await Promise.all([conformanceOf({}), conformanceOf({}, 4096), conformanceOf({ reorderKeys: true })])
  expect(runs.map(notPassed)).toEqual([[], [], []])
})

it('passes the honest server with a caller that --header signs in as another user than --user-header', async () => {
  expect(notPassed(await conformanceOf({}, SMALL, { headers: { 'x-user': 'conformance-caller' } }))).toEqual([])
})

it('passes a server that answers a body over the limit at once, unread, and then closes the connection', async () => {
  // Such a server (a framework's size limit) gets its 413 out, then closes the connection under the
  // next request sent on it, which gets no answer: the control, below, over a kept-alive connection.
  const early: ReferenceOptions = { closesAfterEarlyAnswer: true, maxBytes: SMALL }
  const server = await startReferenceServer(early)
  const control = createHttpFetch()
  try {
    const [id, big] = ['conformance-early-1', `{"variables":{"kept":"${'x'.repeat(SMALL)}"}}`]
    const over = await control.fetch(`${server.base}/${id}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: big })
    expect([over.status, await over.text()]).toEqual([413, expect.stringContaining('"too_large"')])
    await expect(control.fetch(`${server.base}/${id}`, { method: 'GET', headers: {} })).rejects.toMatchObject({ code: 'ECONNRESET' })
  } finally {
    control.close()
    await server.close()
  }
  // The suite sends such a request once more: it passes over Node's fetch, as the command runs, and over node:http.
  const overFetch = async () => {
    const running = await startReferenceServer(early)
    return runConformance(running.base, { ...USER, maxBytes: SMALL }).finally(() => running.close())
  }
  // And the control of that: the suite as it was, sending nothing twice, fails it (a fetch that hides the reset).
  const hidesResets = (async (url: string, init: RequestInit) =>
    http.fetch(url, init).catch((error: unknown) => {
      throw new Error(`no answer (${String(error)})`)
    })) as typeof fetch
  const [fetched, overHttp, once] = await Promise.all([
    overFetch(),
    conformanceOf(early),
    conformanceOf(early, SMALL, { fetch: hidesResets }),
  ])
  expect([notPassed(fetched), notPassed(overHttp)]).toEqual([[], []])
  expect(once.filter((result) => !result.ok).map(said)).toEqual([
    expect.stringMatching(
      /^a body over the size limit is 413 too_large: GET \{base\}\/\{id\} got no answer: no answer \(Error: socket hang up\)/,
    ),
  ])
}, 30_000)

it('fails every flawed server on the first run against it, in a check that names the broken rule', async () => {
  const flaws = Object.keys(CAUGHT_BY) as Flaw[]
  const outcomes = await Promise.all(
    flaws.map(async (flaw) => ({ flaw, failed: (await conformanceOf({ flaw })).filter((result) => !result.ok) })),
  )
  const missed = outcomes
    .filter(({ flaw, failed }) => !failed.some((result) => said(result).includes(CAUGHT_BY[flaw])))
    .map(({ flaw, failed }) => ({ flaw, expected: CAUGHT_BY[flaw], failed: failed.map(said) }))
  expect(missed).toEqual([])
}, 30_000)
