// @vitest-environment jsdom
import { afterEach, expect, it, vi } from 'vitest'
import { createSessionClient, memoryLocalCopy, type SessionClient } from '../../src/client/index.js'
import { fakeLocks } from '../fake-locks.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

const mock = setupMockServer()
const clients: SessionClient[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

it('takes over the last changes of a client stopped in this page after the new one began reading', async () => {
  const storage = memoryLocalCopy()
  const locks = fakeLocks()
  const make = () => {
    const client = createSessionClient({ endpoint: ENDPOINT, sessionId: 'preload-session-1', storage, locks })
    clients.push(client)
    return client
  }
  const old = make()
  await old.start()
  const next = make() // a remounted provider: its client starts reading the cache now…
  old.set('draft', 'typed just before the remount') // …and the old client writes after that read
  await old.stop()
  await next.start()
  expect(next.get('draft')).toBe('typed just before the remount')
  await vi.waitFor(async () =>
    expect((await mock.store.get('preload-session-1'))?.variables).toEqual({ draft: 'typed just before the remount' }),
  )
})
