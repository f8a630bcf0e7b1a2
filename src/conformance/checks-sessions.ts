import {
  type Answer,
  type Backend,
  brief,
  type Check,
  cut,
  expectError,
  expectSame,
  expectStatus,
  fail,
  type Snapshot,
  tick,
} from './backend.js'

const LIMIT_HINT = " (if the backend's limit is another, pass it with --max-bytes)"

/** An error changes nothing: the session is exactly what it was, timestamps included. */
export async function expectUnchanged(backend: Backend, before: Snapshot, what = 'the session after the error'): Promise<void> {
  const after = await backend.get(before.sessionId)
  expectStatus(after, 200)
  expectSame(after.body, before, `${what} (an error changes nothing)`)
}

/** A check that each patch body is answered `status code`, on a session it leaves unchanged. */
export function refused(name: string, bodies: Array<string | object>, status: number, code: string, contentType?: string): Check {
  return {
    name,
    async run(backend) {
      const before = await backend.seeded()
      for (const body of bodies) {
        const shown = typeof body === 'string' ? cut(body, 80) : brief(body, 80)
        expectError(await backend.patch(before.sessionId, body, { contentType }), status, code, ` for the body ${shown}`)
      }
      await expectUnchanged(backend, before)
    },
  }
}

/** `[variables, version]` of an answered snapshot, to compare both at once. */
const state = (answer: Answer) => [answer.body?.variables, answer.body?.version]

/** Reading, creating, merging, counting versions, replays and size: the patch path. */
export const sessionChecks: Check[] = [
  {
    name: 'GET of a missing session is 404 not_found',
    run: async (b) => expectError(await b.get(b.newId()), 404, 'not_found'),
  },
  {
    name: 'the first patch creates the session at version 1 and answers its snapshot; GET answers the same',
    async run(b) {
      const id = b.newId()
      const variables = { email: 'a@b.c', cart: ['milk', { qty: 2 }] }
      const created = await b.patch(id, { variables })
      expectStatus(created, 200)
      expectSame([created.body.sessionId, ...state(created)], [id, variables, 1], 'the new snapshot [sessionId, variables, version]')
      expectSame((await b.get(id)).body, created.body, 'GET after the patch')
    },
  },
  {
    name: 'a patch merges per variable: a key in "variables" replaces that variable whole, the others stay',
    async run(b) {
      const before = await b.seeded({ cart: { a: 1, b: 2 }, keep: true })
      const after = await b.patch(before.sessionId, { variables: { cart: { c: 3 } } })
      expectStatus(after, 200)
      expectSame(state(after), [{ cart: { c: 3 }, keep: true }, 2], 'per-key merge: [variables, version] after patching "cart"')
      expectSame((await b.get(before.sessionId)).body, after.body, 'GET after the patch')
    },
  },
  {
    name: 'null is a value: a variable set to null is kept as null, not deleted',
    async run(b) {
      const before = await b.seeded({ note: 'x', kept: 1 })
      const after = await b.patch(before.sessionId, { variables: { note: null } })
      expectStatus(after, 200)
      expectSame(after.body.variables, { note: null, kept: 1 }, 'null is a value: the variables after setting "note" to null')
    },
  },
  {
    name: '"deleted" removes variables',
    async run(b) {
      const before = await b.seeded({ draft: 'x', kept: 1 })
      const after = await b.patch(before.sessionId, { deleted: ['draft'] })
      expectStatus(after, 200)
      expectSame(state(after), [{ kept: 1 }, 2], '"deleted" removes: [variables, version] after deleting "draft"')
    },
  },
  {
    name: 'version counts applied changes: one per patch that changes something, none for an empty patch or a replay',
    async run(b) {
      const clientId = b.newClientId()
      const { sessionId } = await b.seeded()
      const writes: Array<[patch: object, version: number, what: string]> = [
        [{ variables: { n: 1 } }, 2, 'a patch'],
        [{}, 2, 'an empty patch {}'],
        [{ variables: {}, deleted: [] }, 2, 'a patch with empty "variables" and "deleted"'],
        [{ variables: { n: 2 }, clientId, seq: 1 }, 3, 'a patch with a seq'],
        [{ variables: { n: 2 }, clientId, seq: 1 }, 3, 'its replay'],
        [{ deleted: ['n'] }, 4, 'a patch that deletes'],
      ]
      for (const [patch, version, what] of writes) {
        const answer = await b.patch(sessionId, patch)
        expectStatus(answer, 200)
        if (answer.body.version !== version) fail(`version after ${what}: expected ${version}, got ${brief(answer.body.version)}`)
      }
    },
  },
  {
    name: 'updatedAt moves with each applied change, not with a replay or an empty patch; createdAt never moves',
    async run(b) {
      const clientId = b.newClientId()
      const id = b.newId()
      const first = await b.patch(id, { variables: { n: 1 }, clientId, seq: 1 })
      expectStatus(first, 200)
      await tick()
      const second = await b.patch(id, { variables: { n: 2 }, clientId, seq: 2 })
      expectStatus(second, 200)
      if (!(Date.parse(second.body.updatedAt) > Date.parse(first.body.updatedAt))) {
        fail(`updatedAt did not move with an applied change: ${first.body.updatedAt}, then ${second.body.updatedAt}`)
      }
      await tick()
      for (const [patch, what] of [
        [{ variables: { n: 2 }, clientId, seq: 2 }, 'a replay'],
        [{}, 'an empty patch'],
      ] as const) {
        const answer = await b.patch(id, patch)
        expectStatus(answer, 200)
        if (answer.body.updatedAt !== second.body.updatedAt)
          fail(`updatedAt moved with ${what}: ${second.body.updatedAt}, then ${answer.body.updatedAt}`)
      }
      const read = await b.get(id)
      for (const answer of [second, read]) {
        if (answer.body?.createdAt !== first.body.createdAt)
          fail(`createdAt moved: ${first.body.createdAt}, then ${brief(answer.body?.createdAt)}`)
      }
      expectSame(read.body, second.body, 'GET after the replay')
    },
  },
  {
    name: "an empty patch to a session that does not exist answers a version-0 snapshot, both timestamps the server's current time, and creates nothing",
    async run(b) {
      // The server's clock, read from the sessions it creates just before and just after: the
      // suite's own clock may be another machine's.
      await tick()
      const before = await b.seeded()
      const id = b.newId()
      const empty = await b.patch(id, {})
      expectStatus(empty, 200, ' for an empty patch {} to a session that does not exist')
      expectSame(
        [empty.body.sessionId, ...state(empty)],
        [id, {}, 0],
        'the answer to an empty patch {} to a missing session [sessionId, variables, version]',
      )
      const after = await b.seeded()
      for (const field of ['createdAt', 'updatedAt'] as const) {
        const at = Date.parse(empty.body[field])
        if (!(at >= Date.parse(before.updatedAt) && at <= Date.parse(after.updatedAt)))
          fail(
            `${field} of a version-0 snapshot is not the server's current time: ${brief(empty.body[field])}, answered between writes at ${before.updatedAt} and ${after.updatedAt}`,
          )
      }
      expectError(await b.get(id), 404, 'not_found', ' after an empty patch to a missing session (it creates nothing)')
    },
  },
  {
    name: 'a patch replayed with the same clientId and seq is applied once, and answers the current snapshot',
    async run(b) {
      const [one, other] = [b.newClientId(), b.newClientId()]
      const id = b.newId()
      expectStatus(await b.patch(id, { variables: { n: 1 }, clientId: one, seq: 1 }), 200)
      expectStatus(await b.patch(id, { variables: { n: 2 }, clientId: other, seq: 1 }), 200)
      const replay = await b.patch(id, { variables: { n: 1 }, clientId: one, seq: 1 })
      expectStatus(replay, 200)
      expectSame(state(replay), [{ n: 2 }, 2], 'a replay is applied once: [variables, version] after replaying seq 1')
      const next = await b.patch(id, { variables: { n: 3 }, clientId: one, seq: 2 })
      expectSame(state(next), [{ n: 3 }, 3], '[variables, version] after the next seq')
    },
  },
  {
    name: 'a patch whose seq is not above the last applied one of its client is not applied (gaps are allowed)',
    async run(b) {
      const clientId = b.newClientId()
      const id = b.newId()
      const writes: Array<[seq: number, n: number, version: number, what: string]> = [
        [1, 1, 1, 'seq 1'],
        [3, 3, 2, 'seq 3 after seq 1 (a gap is allowed)'],
        [2, 3, 2, 'seq 2 after seq 3 (an older seq is not applied)'],
        [4, 4, 3, 'seq 4'],
      ]
      for (const [seq, n, version, what] of writes) {
        const answer = await b.patch(id, { variables: { n: seq }, clientId, seq })
        expectStatus(answer, 200)
        expectSame(state(answer), [{ n }, version], `[variables, version] after ${what}`)
      }
    },
  },
  {
    name: 'the last seq is kept per session and client: one clientId writing to two sessions is applied on both',
    async run(b) {
      const clientId = b.newClientId()
      const sessions = [
        ['A', b.newId()],
        ['B', b.newId()],
      ] as const
      for (const seq of [1, 2]) {
        for (const [name, id] of sessions) {
          const answer = await b.patch(id, { variables: { n: `${name}${seq}` }, clientId, seq })
          expectStatus(answer, 200)
          expectSame(
            state(answer),
            [{ n: `${name}${seq}` }, seq],
            `seq per (session, client): [variables, version] of session ${name} after seq ${seq} of a client that writes to A and B`,
          )
        }
      }
    },
  },
  refused(
    'a bad seq ("5", 1.5, true, 0, -1, null, 2^53) is 400 invalid_patch',
    ['5', 1.5, true, 0, -1, null, 2 ** 53].map((seq) => ({ variables: { kept: 2 }, clientId: 'conformance-seq', seq })),
    400,
    'invalid_patch',
  ),
  {
    name: 'a seq written 5.0 is the integer 5',
    async run(b) {
      const clientId = b.newClientId()
      const { sessionId } = await b.seeded()
      const first = await b.patch(sessionId, `{"variables":{"kept":2},"clientId":"${clientId}","seq":5.0}`)
      expectStatus(first, 200, ' for seq 5.0')
      const replay = await b.patch(sessionId, { variables: { kept: 3 }, clientId, seq: 5 })
      expectStatus(replay, 200)
      expectSame(state(replay), [{ kept: 2 }, 2], '[variables, version] after seq 5.0, then seq 5 (a replay)')
    },
  },
  {
    name: 'clientId and seq come together, and a clientId is 1 to 128 characters counted in code points',
    async run(b) {
      const before = await b.seeded()
      for (const fields of [
        { clientId: 'conformance-alone' },
        { seq: 1 },
        { clientId: '', seq: 1 },
        { clientId: 'c'.repeat(129), seq: 1 },
        { clientId: 7, seq: 1 },
      ]) {
        expectError(
          await b.patch(before.sessionId, { variables: { kept: 2 }, ...fields }),
          400,
          'invalid_patch',
          ` for ${brief(fields, 60)}`,
        )
      }
      await expectUnchanged(b, before)
      const answer = await b.patch(before.sessionId, { variables: { kept: 2 }, clientId: '😀'.repeat(128), seq: 1 })
      expectStatus(answer, 200, ' for a clientId of 128 code points (256 UTF-16 units)')
    },
  },
  {
    name: 'DELETE answers 204; the session is then 404, and DELETE of a missing session is 404 not_found',
    async run(b) {
      const { sessionId } = await b.seeded()
      expectStatus(await b.call('DELETE', `/${sessionId}`), 204)
      expectError(await b.get(sessionId), 404, 'not_found', ' after DELETE')
      expectError(await b.call('DELETE', `/${sessionId}`), 404, 'not_found', ' for DELETE of a missing session')
    },
  },
  {
    name: 'a body over the size limit is 413 too_large',
    async run(b) {
      const before = await b.seeded()
      const [head, tail] = ['{"variables":{"kept":"', '"}}']
      const body = head + 'x'.repeat(b.maxBytes + 1 - head.length - tail.length) + tail
      expectError(await b.patch(before.sessionId, body), 413, 'too_large', ` for a body of ${b.maxBytes + 1} bytes${LIMIT_HINT}`)
      await expectUnchanged(b, before)
    },
  },
  {
    name: 'a patch that would grow the session over the size limit is 413 too_large, though each body is under it',
    async run(b) {
      const part = 'x'.repeat(Math.floor(b.maxBytes * 0.3))
      const id = b.newId()
      let last: Answer | undefined
      for (const n of [1, 2, 3]) {
        last = await b.patch(id, { variables: { [`part${n}`]: part } })
        expectStatus(last, 200, ` for part ${n} (the session at about ${n * 30}% of ${b.maxBytes} bytes)`)
      }
      const over = await b.patch(id, { variables: { part4: part } })
      expectError(over, 413, 'too_large', ` for a patch that grows the session to about 120% of ${b.maxBytes} bytes${LIMIT_HINT}`)
      await expectUnchanged(b, last!.body)
    },
  },
  {
    name: 'a value nested 64 levels deep is stored; 65 levels is 400 invalid_patch',
    async run(b) {
      const nested = (levels: number) => `{"variables":{"deep":${'['.repeat(levels)}${']'.repeat(levels)}}}`
      const before = await b.seeded()
      expectError(await b.patch(before.sessionId, nested(65)), 400, 'invalid_patch', ' for a value 65 levels deep')
      await expectUnchanged(b, before)
      expectStatus(await b.patch(before.sessionId, nested(64)), 200, ' for a value 64 levels deep')
    },
  },
  {
    name: 'a lone surrogate ("\\ud800") is not Unicode text: 400 invalid_patch in a value, invalid_key in a name',
    async run(b) {
      const before = await b.seeded()
      for (const body of ['{"variables":{"text":"\\ud800"}}', '{"variables":{"list":["ok","\\udc00"]}}']) {
        expectError(await b.patch(before.sessionId, body), 400, 'invalid_patch', ` for the body ${body}`)
      }
      for (const body of ['{"variables":{"\\ud800":1}}', '{"deleted":["\\udc00"]}']) {
        expectError(await b.patch(before.sessionId, body), 400, 'invalid_key', ` for the body ${body}`)
      }
      await expectUnchanged(b, before)
    },
  },
]
