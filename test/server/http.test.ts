import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createSessionClient, memoryLocalCopy } from '../../src/client/index.js'
import { createSessionHandler, openStore, serve, type Steps } from '../../src/server/index.js'

const places: string[] = []
afterAll(() => Promise.all(places.map((place) => rm(place, { recursive: true, force: true }))))

async function startOn(url: string, steps: Steps = {}) {
  const store = await openStore(url)
  const running = await serve({ handler: createSessionHandler({ store, steps, onError: () => {} }), port: 0, onClose: () => store.close() })
  return { store, running, endpoint: `${running.url}/api/session` }
}

describe.each(['file', 'sqlite'])('the real client and the real server over loopback, %s store', (kind) => {
  it('writes, restarts the server, and reads the same session back', async () => {
    const place = await mkdtemp(join(tmpdir(), 'ws-http-'))
    places.push(place)
    const url = kind === 'file' ? `file:${join(place, 'sessions')}` : `sqlite:${join(place, 'sessions.db')}`

    const first = await startOn(url)
    const writer = createSessionClient({ endpoint: first.endpoint, sessionId: 'http-session-1', storage: memoryLocalCopy() })
    writer.set('email', 'ada@example.com')
    writer.set('cart', [{ item: 'milk', qty: 2 }])
    await writer.flush()
    writer.delete('cart')
    writer.set('name', 'Ada')
    await writer.flush()
    await writer.stop()
    await first.running.close()

    const second = await startOn(url)
    const reader = createSessionClient({ endpoint: second.endpoint, sessionId: 'http-session-1', storage: memoryLocalCopy() })
    const snapshot = await reader.refresh()
    expect(snapshot).toMatchObject({ variables: { email: 'ada@example.com', name: 'Ada' }, version: 2 })
    expect(reader.getSnapshot()).toEqual({ email: 'ada@example.com', name: 'Ada' })
    await reader.stop()
    await second.running.close()
  })
})
