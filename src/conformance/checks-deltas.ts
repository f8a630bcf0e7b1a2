import { applyDelta, applyRunDelta, tagOf } from '../shared/delta.js'
import type { RunDelta, RunRecord, SessionDelta, SessionSnapshot } from '../shared/protocol.js'
import { type Answer, type Backend, brief, type Check, expectError, expectSame, expectStatus, fail, tick } from './backend.js'

// Deltas (docs/protocol.md, "Deltas"): an extension. A backend that never answers one passes
// these checks (a snapshot is always a right answer); a backend that answers deltas must answer
// right ones, against the right base, and 304 for a GET with nothing new.

const baseOf = (held: SessionSnapshot | null) => ({ 'session-base': held && held.version > 0 ? tagOf(held) : '0' })

/** An answer's session whole, as a client holding `held` makes it; fails on a delta that does not fit `held`. */
function taken(answer: Answer, held: SessionSnapshot, session: SessionSnapshot | SessionDelta = answer.body): SessionSnapshot {
  if (!('base' in session)) return session
  const made = applyDelta(held, session)
  if (!made)
    fail(
      `${answer.request} with Session-Base ${tagOf(held)} answered a delta from base ${session.base} (createdAt ${session.createdAt}): not the version the client holds`,
    )
  return made
}

/** A new session holding `variables` at version 1, as the client holds it. */
const seeded = async (b: Backend, variables: Record<string, unknown>) => (await b.seeded(variables)) as SessionSnapshot

/** The session as a client without deltas gets it. */
async function whole(b: Backend, sessionId: string): Promise<SessionSnapshot> {
  const answer = await b.get(sessionId)
  expectStatus(answer, 200)
  return answer.body as SessionSnapshot
}

/** A delta (or snapshot) that must make exactly the session as it is now. */
async function expectExact(b: Backend, answer: Answer, held: SessionSnapshot, session?: SessionSnapshot | SessionDelta): Promise<boolean> {
  const body: SessionSnapshot | SessionDelta = session ?? answer.body
  const made = taken(answer, held, body)
  expectSame(
    made,
    await whole(b, held.sessionId),
    `${answer.request}: the session made from ${'base' in body ? 'the delta' : 'the snapshot'}`,
  )
  return 'base' in body
}

export const deltaChecks: Check[] = [
  {
    name: 'a delta (for a request with Session-Base) holds every variable set and deleted since the base: applied to it, the session exactly',
    async run(b) {
      const held = await seeded(b, { a: 1, b: 2, c: 3, d: 4 })
      const sessionId = held.sessionId
      // Changed by another client, without a base: the held version is now two behind.
      expectStatus(await b.patch(sessionId, { variables: { b: 20 }, deleted: ['c'] }), 200)
      expectStatus(await b.patch(sessionId, { variables: { e: 5 }, deleted: ['d'] }), 200)
      const read = await b.get(sessionId, undefined, baseOf(held))
      expectStatus(read, 200, ' for a GET from a client two versions behind')
      await expectExact(b, read, held)
      // A patch's answer: from the base the client states.
      const now = await whole(b, sessionId)
      const patched = await b.patch(sessionId, { variables: { a: 10 }, deleted: ['e'] }, { headers: baseOf(now) })
      expectStatus(patched, 200)
      await expectExact(b, patched, now)
    },
  },
  {
    name: 'a step’s answer and a run’s end carry the session as a delta from the base stated, or whole',
    needs: 'step',
    async run(b) {
      const held = await seeded(b, { a: 1 })
      const sessionId = held.sessionId
      const ran = await b.run(sessionId, { input: { x: 1 } }, { headers: baseOf(held) })
      expectStatus(ran, 200)
      await expectExact(b, ran, held, ran.body.session)
      const before = await whole(b, sessionId)
      const runId = `run-${b.newId()}`
      const started = await b.startRun(sessionId, { runId, step: b.step, input: { sleepMs: 100 } }, 5000, { headers: baseOf(before) })
      expectStatus(started, 202)
      let end: Answer = started
      for (let polls = 0; end.body.run.status === 'running'; polls++) {
        if (polls > 40) fail(`run ${runId} was still running after 40 long polls`)
        end = await b.call('GET', `/${sessionId}/runs/${runId}?after=${end.body.run.rev}&waitMs=5000`, { headers: baseOf(before) })
        expectStatus(end, 200)
      }
      if (end.body.session === undefined) fail(`${end.request}: a succeeded run's answer without its session`)
      await expectExact(b, end, before, end.body.session)
    },
  },
  {
    name: 'a GET with the tag of the current version answers 304 with no body (a backend that answers deltas), or the whole snapshot (one that does not)',
    async run(b) {
      const held = await seeded(b, { a: 1 })
      const plain = await b.get(held.sessionId)
      if (plain.etag !== null && plain.etag !== `"${tagOf(held)}"`)
        fail(`${plain.request} answered ETag ${plain.etag}, expected "${tagOf(held)}" (the version's tag, quoted)`)
      // Does it answer deltas? A change and a GET from the version before tell.
      expectStatus(await b.patch(held.sessionId, { variables: { a: 2 } }), 200)
      const behind = await b.get(held.sessionId, undefined, baseOf(held))
      expectStatus(behind, 200)
      const speaksDeltas = await expectExact(b, behind, held)
      const current = await whole(b, held.sessionId)
      const same = await b.get(held.sessionId, undefined, baseOf(current))
      if (same.status === 304) {
        if (same.body !== undefined) fail(`${same.request} answered 304 with a body: ${brief(same.body)}`)
        return
      }
      if (speaksDeltas) fail(`${same.request} with the current version's tag answered ${same.status} ${brief(same.body)}, expected 304`)
      expectStatus(same, 200)
      expectSame(same.body, current, `${same.request}: the snapshot`)
    },
  },
  {
    name: 'a GET of a session carries its ETag, and one with If-None-Match naming it answers 304 with no body, and the session once it changed (a backend that answers deltas)',
    async run(b) {
      const held = await seeded(b, { a: 1 })
      const plain = await b.get(held.sessionId)
      expectStatus(plain, 200)
      if (plain.etag === null) {
        // A backend that answers deltas says each version's tag (docs/protocol.md); one that does not may send none.
        expectStatus(await b.patch(held.sessionId, { variables: { a: 2 } }), 200)
        const behind = await b.get(held.sessionId, undefined, baseOf(held))
        if ('base' in behind.body)
          fail(`${plain.request} answered no ETag, though the backend answers deltas (every GET of a session carries ETag: "{tag}")`)
        return
      }
      const same = await b.get(held.sessionId, undefined, { 'if-none-match': plain.etag })
      expectStatus(same, 304, ` for If-None-Match: ${plain.etag} (the ETag of the session as it is)`)
      if (same.body !== undefined) fail(`${same.request} answered 304 with a body: ${brief(same.body)}`)
      expectStatus(await b.patch(held.sessionId, { variables: { a: 2 } }), 200)
      const changed = await b.get(held.sessionId, undefined, { 'if-none-match': plain.etag })
      expectStatus(changed, 200, ` for If-None-Match: ${plain.etag} after the session changed`)
      expectSame(changed.body, await whole(b, held.sessionId), `${changed.request}: the snapshot`)
    },
  },
  {
    name: 'a base of another lineage (the session deleted and made again under its id) gets the whole snapshot, never a delta',
    async run(b) {
      const held = await seeded(b, { a: 1, b: 1 })
      expectStatus(await b.patch(held.sessionId, { variables: { a: 2 } }), 200)
      const old = await whole(b, held.sessionId)
      expectStatus(await b.call('DELETE', `/${held.sessionId}`), 204)
      await tick()
      for (const value of [1, 2, 3]) expectStatus(await b.patch(held.sessionId, { variables: { c: value } }), 200)
      const answer = await b.get(held.sessionId, undefined, baseOf(old))
      expectStatus(answer, 200)
      if ('base' in answer.body)
        fail(
          `${answer.request} with the tag of a deleted session's version ${tagOf(old)} answered a delta from base ${answer.body.base}: its createdAt is another session's`,
        )
      expectSame(answer.body, await whole(b, held.sessionId), `${answer.request}: the snapshot`)
    },
  },
  {
    name: 'a run delta (a long poll with Session-Base after rev 1 or more) leaves out only fields that never change: it completes the record exactly',
    needs: 'step',
    async run(b) {
      const held = await seeded(b, { a: 1 })
      const runId = `run-${b.newId()}`
      const started = await b.startRun(held.sessionId, { runId, step: b.step, input: { sleepMs: 300, note: 'kept' } })
      expectStatus(started, 202)
      let record = started.body.run as RunRecord
      while (record.status === 'running') {
        const polled = await b.call('GET', `/${held.sessionId}/runs/${runId}?after=${record.rev}&waitMs=5000`, { headers: baseOf(held) })
        expectStatus(polled, 200)
        const run = polled.body.run as RunRecord | RunDelta
        if (!('base' in run)) {
          record = run
          continue
        }
        if (run.base !== record.rev) fail(`${polled.request} answered a run delta from rev ${run.base}, expected from ${record.rev}`)
        record = applyRunDelta(record, run) ?? fail(`${polled.request}: a run delta of another run: ${brief(run)}`)
      }
      const stored = await b.call('GET', `/${held.sessionId}/runs/${runId}`)
      expectStatus(stored, 200)
      expectSame(record, stored.body.run, 'the run made from its run deltas')
    },
  },
  {
    name: 'a Session-Base that is neither 0 nor a tag is 400 bad_request (a backend that answers deltas), and changes nothing',
    async run(b) {
      const held = await seeded(b, { a: 1 })
      expectStatus(await b.patch(held.sessionId, { variables: { a: 2 } }), 200)
      const behind = await b.get(held.sessionId, undefined, baseOf(held))
      if (!('base' in behind.body)) return // It does not read the header: nothing to refuse.
      const answer = await b.patch(held.sessionId, { variables: { a: 3 } }, { headers: { 'session-base': '2@yesterday' } })
      expectError(answer, 400, 'bad_request', ' for Session-Base: 2@yesterday')
      expectSame((await whole(b, held.sessionId)).variables, { a: 2 }, 'the variables after a refused patch')
    },
  },
]
