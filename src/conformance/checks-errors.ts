import { type Check, expectError, expectStatus, fail } from './backend.js'
import { expectUnchanged, refused } from './checks-sessions.js'

/** Requests the protocol refuses, each with its status and code (their bodies' shape is docs/openapi.json's). */
export const errorChecks: Check[] = [
  refused('a body that is not JSON is 400 invalid_json', ['{"variables": {', 'variables=1'], 400, 'invalid_json'),
  refused(
    'NaN, Infinity and other literals JSON does not have are 400 invalid_json',
    ['{"variables":{"x":NaN}}', '{"variables":{"x":Infinity}}', '{"variables":{"x":-Infinity}}', "{'variables':{}}"],
    400,
    'invalid_json',
  ),
  refused(
    'a patch that is not an object, "variables" that is not an object, "deleted" that is not a string array: 400 invalid_patch',
    [[1, 2], '"text"', '7', { variables: ['x'] }, { variables: 'x' }, { deleted: [1] }, { deleted: 'draft' }],
    400,
    'invalid_patch',
  ),
  refused(
    'an empty name, "__proto__", "constructor" or "prototype" is 400 invalid_key, in "variables" and in "deleted"',
    [
      { variables: { '': 1 } },
      '{"variables":{"kept":2,"__proto__":{"polluted":true}}}',
      { variables: { constructor: 1 } },
      { deleted: ['prototype'] },
      { deleted: [''] },
    ],
    400,
    'invalid_key',
  ),
  {
    name: 'a name is at most 256 characters counted in code points: 256 "😀" are accepted, 257 characters are 400 invalid_key',
    async run(b) {
      const before = await b.seeded()
      for (const [name, what] of [
        ['k'.repeat(257), '257 "k"'],
        ['😀'.repeat(257), '257 "😀"'],
      ] as const) {
        expectError(await b.patch(before.sessionId, { variables: { [name]: 1 } }), 400, 'invalid_key', ` for a name of ${what}`)
      }
      await expectUnchanged(b, before)
      const longest = '😀'.repeat(256)
      const set = await b.patch(before.sessionId, { variables: { [longest]: 1 } })
      expectStatus(set, 200, ' for a name of 256 code points ("😀", 512 UTF-16 units)')
      if (!Object.hasOwn(set.body.variables, longest)) fail('a variable named with 256 "😀" was not stored')
      expectStatus(await b.patch(before.sessionId, { deleted: [longest] }), 200, ' for deleting a name of 256 code points')
    },
  },
  refused(
    'a patch that is not application/json is 415 unsupported_media_type',
    ['{"variables":{"kept":2}}'],
    415,
    'unsupported_media_type',
    'text/plain',
  ),
  {
    name: 'a malformed session id is 400 invalid_session_id, on every route',
    async run(b) {
      for (const id of ['short', 'bad.id.here', 'x'.repeat(129)]) {
        expectError(await b.get(id), 400, 'invalid_session_id')
        expectError(await b.patch(id, { variables: { a: 1 } }), 400, 'invalid_session_id')
        expectError(await b.call('DELETE', `/${id}`), 400, 'invalid_session_id')
        expectError(await b.run(id, { input: 1 }), 400, 'invalid_session_id')
      }
    },
  },
  {
    name: 'a run of a step that is not registered is 404 unknown_step',
    async run(b) {
      const before = await b.seeded()
      expectError(await b.call('POST', `/${before.sessionId}/run/conformance_no_such_step`, { body: { input: 1 } }), 404, 'unknown_step')
      await expectUnchanged(b, before)
    },
  },
]
