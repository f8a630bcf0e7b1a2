import { afterEach, expect, it } from 'vitest'
import { createSessionClient, memoryLocalCopy, type SessionClient, SessionError } from '../../src/client/index.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

// Sign-in: a session started anonymously becomes the user's only when the app says so.
const mock = setupMockServer({}, { authorize: (request) => request.headers.get('x-user') })
const clients: SessionClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

it('adopt() sends what was typed before, then makes the session the signed-in user’s, and only theirs', async () => {
  let user: string | null = null
  const client = createSessionClient({
    endpoint: ENDPOINT,
    sessionId: 'adopt-session-1',
    storage: memoryLocalCopy(),
    locks: null,
    headers: (): Record<string, string> => (user ? { 'x-user': user } : {}),
  })
  clients.push(client)
  await client.start()
  client.set('draft', 'typed before signing in')

  await expect(client.adopt()).rejects.toMatchObject({ code: 'unauthenticated' }) // nobody signed in yet
  user = 'eve'
  await client.adopt()
  expect(await mock.store.get('adopt-session-1')).toMatchObject({ userId: 'eve', variables: { draft: 'typed before signing in' } })
  expect(client.getStatus()).toMatchObject({ isDirty: false, version: 2 })
  expect((await client.listSessions()).map((session) => session.sessionId)).toEqual(['adopt-session-1'])

  user = 'ada' // someone else: the session is not theirs to take, nor to read
  const failure = await client.adopt().catch((error: unknown) => error)
  expect(failure).toBeInstanceOf(SessionError)
  expect(failure).toMatchObject({ code: 'not_found' })
  expect(await client.refresh()).toBeNull()
})
