import { brief, type Check, expectError, expectSame, expectStatus, fail, type Snapshot, tick } from './backend.js'

type Summary = Omit<Snapshot, 'variables'>

const summaryOf = ({ sessionId, version, createdAt, updatedAt }: Summary): Summary => ({ sessionId, version, createdAt, updatedAt })

/** `GET {base}`: nothing for strangers, a signed-in user's own sessions newest first, in pages. */
export const listingChecks: Check[] = [
  {
    name: 'GET {base} answers { "sessions": [] } to a caller without credentials, even when sessions exist',
    async run(b) {
      await b.seeded()
      if (b.hasUser) await b.seeded({ kept: 1 }, 'user')
      const listing = await b.list('', 'stranger')
      // A backend that lets no anonymous caller in lists nothing to strangers either.
      if (listing.status === 401) return
      expectStatus(listing, 200)
      const ids = (listing.body.sessions as Summary[]).map((summary) => summary.sessionId)
      if (ids.length > 0)
        fail(
          `a caller without credentials was listed ${ids.length} session ids (${brief(ids, 100)}): ids are never listed to strangers, it must be []`,
        )
    },
  },
  {
    name: "GET {base} lists a signed-in user's own sessions, newest updatedAt first, as summaries",
    needs: 'user',
    async run(b) {
      const older = await b.seeded({ n: 1 }, 'user')
      await tick()
      const newer = await b.seeded({ n: 2 }, 'user')
      await tick()
      const touched = await b.patch(older.sessionId, { variables: { n: 3 } }, { as: 'user' })
      expectStatus(touched, 200)
      const listing = await b.list('', 'user')
      expectStatus(listing, 200)
      const sessions = listing.body.sessions as Summary[]
      const at = (id: string) => sessions.findIndex((summary) => summary.sessionId === id)
      if (at(older.sessionId) < 0 || at(newer.sessionId) < 0) {
        fail(
          `the user's listing lacks sessions they just wrote: ${brief(
            sessions.map((summary) => summary.sessionId),
            120,
          )}`,
        )
      }
      if (at(older.sessionId) > at(newer.sessionId))
        fail('not newest first: the session written last is listed after one written before it')
      for (let i = 1; i < sessions.length; i++) {
        const [previous, next] = [sessions[i - 1]!.updatedAt, sessions[i]!.updatedAt]
        if (Date.parse(previous) < Date.parse(next)) fail(`not newest first: updatedAt ${previous} is listed before ${next}`)
      }
      expectSame(summaryOf(sessions[at(older.sessionId)]!), summaryOf(touched.body), 'the summary of a listed session')
    },
  },
  {
    name: 'a listing is a page: ?limit= (1 to 100) and ?offset= (0 or more); anything else is 400 bad_request',
    async run(b) {
      const as = b.hasUser ? 'user' : 'caller'
      for (const query of ['?limit=0', '?limit=101', '?limit=x', '?limit=1.5', '?offset=-1']) {
        expectError(await b.list(query, as), 400, 'bad_request', ` for ${query}`)
      }
      if (!b.hasUser) return
      await b.seeded({ n: 1 }, 'user')
      await b.seeded({ n: 2 }, 'user')
      const two = await b.list('?limit=2', 'user')
      const second = await b.list('?limit=1&offset=1', 'user')
      expectStatus(two, 200)
      expectStatus(second, 200)
      if (two.body.sessions.length !== 2) fail(`?limit=2 listed ${two.body.sessions.length} sessions of a user who has 2 or more`)
      expectSame(
        second.body.sessions.map((summary: Summary) => summary.sessionId),
        [two.body.sessions[1].sessionId],
        '?limit=1&offset=1: the second session of ?limit=2',
      )
    },
  },
]
