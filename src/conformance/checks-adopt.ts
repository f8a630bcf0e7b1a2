import { type Check, expectError, expectSame, expectStatus, type Snapshot } from './backend.js'

// Adoption (docs/protocol.md, "Other extensions"): `POST {base}/{id}/adopt` with no body. The
// suite signs in only as the user of `userHeaders`; a caller without any configured header (a
// stranger) is the one without a user, and makes the sessions without an owner.

/** `[sessionId, variables]` of an answered snapshot. */
const which = (body: { sessionId?: unknown; variables?: unknown } | undefined) => [body?.sessionId, body?.variables]

export const adoptChecks: Check[] = [
  {
    name: 'POST {base}/{id}/adopt without a user is 401 unauthenticated',
    run: async (b) => expectError(await b.adopt(b.newId(), 'stranger'), 401, 'unauthenticated', ' for a caller without credentials'),
  },
  {
    name: 'POST {base}/{id}/adopt: a signed-in user takes a session without an owner, version +1, and it is theirs alone; adopting their own is 200',
    needs: 'user',
    async run(b) {
      const made = await b.patch(b.newId(), { variables: { draft: 'typed before signing in' } }, { as: 'stranger' })
      if (made.status === 401) {
        // The backend lets no anonymous caller write, so no session is without an owner: what is
        // left to check is that adopting one's own session answers it.
        const own = await b.seeded({ draft: 1 }, 'user')
        const adopted = await b.adopt(own.sessionId, 'user')
        expectStatus(adopted, 200, " for adopting the user's own session")
        expectSame(which(adopted.body), which(own), "the answer to adopting the user's own session [sessionId, variables]")
        return
      }
      expectStatus(made, 200, ' for a patch by a caller without credentials')
      const ownerless = made.body as Snapshot
      const adopted = await b.adopt(ownerless.sessionId, 'user')
      expectStatus(adopted, 200, ' for adopting a session without an owner')
      expectSame(
        [...which(adopted.body), adopted.body.version],
        [...which(ownerless), ownerless.version + 1],
        'the adopted session [sessionId, variables, version] (adoption is a change: version +1)',
      )
      expectSame((await b.get(ownerless.sessionId, 'user')).body, adopted.body, "the user's GET after the adoption")
      const stranger = await b.get(ownerless.sessionId, 'stranger')
      expectError(stranger, 404, 'not_found', " for a caller without credentials after the adoption (the session is the user's alone)")
      const again = await b.adopt(ownerless.sessionId, 'user')
      expectStatus(again, 200, " for adopting a session that is the caller's already")
      expectSame(which(again.body), which(adopted.body), 'the answer to adopting it again [sessionId, variables]')
    },
  },
  {
    name: "POST {base}/{id}/adopt of a missing session, or of another user's, is 404 not_found",
    needs: 'user',
    async run(b) {
      const id = b.newId()
      expectError(await b.adopt(id, 'user'), 404, 'not_found', ' for a session that does not exist')
      expectError(await b.get(id, 'user'), 404, 'not_found', ' after adopting a missing session (it creates nothing)')
      // Another user's: only when `headers` sign in someone else, whose session the user cannot read.
      const theirs = await b.seeded({ kept: 1 })
      if ((await b.get(theirs.sessionId, 'user')).status !== 404) return
      expectError(await b.adopt(theirs.sessionId, 'user'), 404, 'not_found', " for another user's session")
      expectSame((await b.get(theirs.sessionId)).body, theirs, "another user's session after the adoption (an error changes nothing)")
    },
  },
]
