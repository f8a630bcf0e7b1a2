// inspectSession(client): what devtools read (every variable's state, the queue with its attempts, the
// local copy, the lock, the change stream) and the actions they take, against a real server on loopback.
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  createSessionClient,
  liveUpdates,
  type LocalCopyStorage,
  memoryLocalCopy,
  type SessionClient,
  type SessionClientOptions,
} from '../../src/client/index.js'
import { type InspectorEvent, inspectSession } from '../../src/devtools/inspector.js'
import { createSessionHandler, memoryStore, type RunningServer, serve, type SessionStore } from '../../src/server/index.js'

const clients: SessionClient[] = []
const servers: RunningServer[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

/** A server on loopback over `store`, counting the patches that reach it. */
async function start(store: SessionStore = memoryStore()) {
  const reached = { posts: 0 }
  const handler = createSessionHandler({ store })
  const server = await serve({
    // Its close() too: it ends the open change streams when the server closes.
    handler: Object.assign(
      (request: Request) => {
        if (request.method === 'POST') reached.posts++
        return handler(request)
      },
      { close: handler.close },
    ),
    port: 0,
  })
  servers.push(server)
  return Object.assign(server, { reached, store })
}

function client(server: RunningServer, sessionId: string, options: SessionClientOptions = {}) {
  const made = createSessionClient({
    endpoint: `${server.url}/api/session`,
    sessionId,
    storage: memoryLocalCopy(),
    locks: null,
    retry: { baseMs: 40, maxMs: 200 },
    ...options,
  })
  clients.push(made)
  return made
}

/** Everything `client`'s inspector tells from now on. */
function record(client: SessionClient) {
  const events: InspectorEvent[] = []
  const stop = inspectSession(client).subscribe((event) => events.push(event))
  return { events, stop, types: () => events.map((event) => event.type) }
}

const stateOf = (client: SessionClient, key: string) =>
  inspectSession(client)
    .inspect()
    .variables.find((variable) => variable.key === key)

describe('inspectSession(client)', () => {
  it('tells each variable apart: confirmed at the base version, changed here, queued, sending, refused with the server error', async () => {
    const server = await start()
    const page = client(server, 'inspect-states')
    await page.start()
    page.set('confirmed', 1)
    await page.flush()
    expect(inspectSession(page).inspect().base?.version).toBe(1)
    expect(stateOf(page, 'confirmed')).toEqual({ key: 'confirmed', value: 1, state: 'confirmed' })

    page.set('typed', 'a')
    expect(stateOf(page, 'typed')).toMatchObject({ state: 'pending', value: 'a' })

    // Held offline: sealed into a patch, it waits in the queue.
    inspectSession(page).setOffline(true)
    const flushed = page.flush().catch((error: unknown) => error)
    expect(await flushed).toMatchObject({ code: 'offline' })
    expect(stateOf(page, 'typed')).toMatchObject({ state: 'queued' })
    page.set('later', true)
    expect(inspectSession(page).inspect().queue).toEqual([
      {
        seq: 2,
        clientId: page.clientId,
        keys: ['typed'],
        bytes: expect.any(Number),
        attempts: 0,
        lastError: null,
        nextRetryAt: null,
        sending: false,
      },
    ])

    // The server refuses it for good (400): still shown, marked refused with the error; not resent.
    inspectSession(page).failNext(1, 400)
    inspectSession(page).setOffline(false)
    await vi.waitFor(() => expect(stateOf(page, 'typed')?.state).toBe('refused'))
    expect(stateOf(page, 'typed')).toMatchObject({ value: 'a', error: { code: 'bad_request', status: 400 } })
    expect(page.get('typed')).toBe('a')
    // A later confirmed write of the same variable clears it.
    page.set('typed', 'b')
    await page.flush()
    expect(stateOf(page, 'typed')).toEqual({ key: 'typed', value: 'b', state: 'confirmed' })
    expect(stateOf(page, 'later')).toMatchObject({ state: 'confirmed' })
  })

  it('makes the next requests fail without reaching the server, and shows the attempts, the last error and the next retry', async () => {
    const server = await start()
    const page = client(server, 'inspect-faults', { retry: { baseMs: 300, maxMs: 300 } })
    await page.start()
    const log = record(page)
    inspectSession(page).failNext(2, 503)
    expect(inspectSession(page).inspect().faults).toEqual({ remaining: 2, status: 503, requests: 'patches' })
    page.set('field', 'value')
    page.sync()
    await vi.waitFor(() => expect(inspectSession(page).inspect().queue[0]?.attempts).toBe(1))
    // Waiting out its backoff, the variable is still on its way (its patch goes again by itself).
    expect(stateOf(page, 'field')).toMatchObject({ state: 'sending' })
    const [patch] = inspectSession(page).inspect().queue
    expect(patch).toMatchObject({ seq: 1, keys: ['field'], lastError: { code: 'unavailable', status: 503 } })
    // Jittered backoff: between half and all of 300 ms from the failure.
    expect(patch!.nextRetryAt! - Date.now()).toBeGreaterThan(0)
    expect(patch!.nextRetryAt! - Date.now()).toBeLessThanOrEqual(300)
    await vi.waitFor(() => expect(page.getStatus()).toMatchObject({ isDirty: false, isSyncing: false }), { timeout: 3000 })
    expect(server.reached.posts).toBe(1) // the two failures were made here
    expect(inspectSession(page).inspect().faults.remaining).toBe(0)
    expect(log.types().filter((type) => type !== 'saved')).toEqual([
      'faults',
      'write',
      'send',
      'injected',
      'failed',
      'send',
      'injected',
      'failed',
      'send',
      'confirmed',
    ])
    const failed = log.events.filter((event) => event.type === 'failed')
    expect(failed.map((event) => event.retryAt !== null)).toEqual([true, true])
    expect(log.events.at(-1)).toMatchObject({ type: 'confirmed', seq: 1, version: 1 })
  })

  it('holds the page offline whatever the browser says, and drains the queue when let go', async () => {
    const server = await start()
    const page = client(server, 'inspect-offline')
    await page.start()
    const log = record(page)
    inspectSession(page).setOffline(true)
    page.setOnline(true) // the browser's "online" event meanwhile
    expect(page.getStatus().isOnline).toBe(false)
    for (const n of [1, 2, 3]) {
      page.set(`k${n}`, n)
      page.sync()
    }
    await new Promise((resolve) => setTimeout(resolve, 50))
    expect(server.reached.posts).toBe(0)
    expect(page.getStatus().pendingKeys).toHaveLength(3)
    inspectSession(page).setOffline(false)
    await page.flush()
    expect(server.reached.posts).toBe(1)
    expect(await server.store.get('inspect-offline')).toMatchObject({ variables: { k1: 1, k2: 2, k3: 3 } })
    expect(log.types().filter((type) => type === 'offline' || type === 'online')).toEqual(['offline', 'online'])
  })

  it('lets go of the hold with the online state the page last reported, and sends at once when the network is back', async () => {
    const server = await start()
    const page = client(server, 'inspect-hold')
    await page.start()
    const inspector = inspectSession(page)
    page.setOnline(false) // the browser is offline
    inspector.setOffline(true)
    inspector.setOffline(false)
    expect(page.getStatus().isOnline).toBe(false) // still what the browser says
    expect(inspector.inspect().heldOffline).toBe(false)
    page.set('typed', 1)
    page.sync()
    page.setOnline(true) // the network is back: no backoff to wait out
    await vi.waitFor(() => expect(page.getStatus()).toMatchObject({ isDirty: false, isSyncing: false }), { timeout: 1000, interval: 5 })
    expect(server.reached.posts).toBe(1)
  })

  it('fails only patches unless asked for any request, and release() ends the failures and the hold', async () => {
    const server = await start()
    const page = client(server, 'inspect-release')
    await page.start()
    page.set('a', 1)
    await page.flush()
    const inspector = inspectSession(page)
    inspector.failNext(3, 503)
    expect(await page.refresh()).toMatchObject({ variables: { a: 1 } }) // a read is not a patch
    expect(inspector.inspect().faults.remaining).toBe(3)
    inspector.setOffline(true)
    inspector.release()
    expect(inspector.inspect()).toMatchObject({ heldOffline: false, faults: { remaining: 0 } })
    expect(page.getStatus().isOnline).toBe(true)
    page.set('b', 2)
    await page.flush() // nothing fails any more
    expect(server.reached.posts).toBe(2)
  })

  it('lists a variable whose deletion the server refused, as refused', async () => {
    const server = await start()
    const page = client(server, 'inspect-refused-delete')
    await page.start()
    page.set('d', 1)
    await page.flush()
    const inspector = inspectSession(page)
    inspector.failNext(1, 400)
    page.delete('d')
    await expect(page.flush()).rejects.toMatchObject({ code: 'bad_request' })
    expect(inspector.inspect().variables.find((variable) => variable.key === 'd')).toMatchObject({
      state: 'refused',
      value: undefined,
      error: { status: 400 },
    })
  })

  it('records nothing while nobody listens, and stops when the listener leaves', async () => {
    const server = await start()
    const page = client(server, 'inspect-quiet')
    await page.start()
    page.set('before', 1)
    const log = record(page)
    page.set('during', 1)
    log.stop()
    log.stop() // twice is harmless
    page.set('after', 1)
    expect(log.events.map((event) => event.type === 'write' && event.key)).toEqual(['during'])
  })

  it("says what a closed page left on the device and that it was taken over; clears this device's copy", async () => {
    const server = await start()
    const storage: LocalCopyStorage = memoryLocalCopy()
    const closed = client(server, 'inspect-left', { storage })
    await closed.start()
    inspectSession(closed).setOffline(true)
    closed.set('draft', 'typed before closing')
    await closed.stop()

    const next = client(server, 'inspect-left', { storage })
    expect(inspectSession(next).inspect().localCopy.leftByPages).toBeNull() // not read yet
    await next.start()
    const { localCopy, tab } = inspectSession(next).inspect()
    expect(localCopy).toMatchObject({
      storage: 'custom',
      persistent: true,
      leftByPages: [{ clientId: closed.clientId, patches: 1, takenOver: true }],
    })
    expect(tab).toEqual({ clientId: next.clientId, locks: false, holdsLock: false })
    await next.flush()
    expect(await server.store.get('inspect-left')).toMatchObject({ variables: { draft: 'typed before closing' } })
    await next.persist()
    expect(inspectSession(next).inspect().localCopy.lastWrite).toMatchObject({ ok: true })
    expect((await storage.keys()).length).toBeGreaterThan(0)

    await inspectSession(next).clearLocalCopy()
    expect(await storage.keys()).toEqual([])
    expect(next.get('draft')).toBe('typed before closing') // the page keeps what it shows
  })

  it('follows the change stream: connected, the versions it brought, a reconnect', async () => {
    const server = await start()
    const watcher = client(server, 'inspect-feed', { plugins: [liveUpdates()] })
    expect(inspectSession(watcher).inspect().feed).toBeNull()
    await watcher.start()
    await vi.waitFor(() => expect(inspectSession(watcher).inspect().feed).toMatchObject({ connected: true, connects: 1 }))
    const writer = client(server, 'inspect-feed')
    writer.set('n', 1)
    await writer.flush()
    await vi.waitFor(() => expect(inspectSession(watcher).inspect().feed).toMatchObject({ lastEventVersion: 1 }))
    expect(inspectSession(watcher).inspect().feed!.lastEventAt).toBeGreaterThan(0)

    // The next request of the watcher, whatever it is, fails on purpose: the stream reconnects after it.
    inspectSession(watcher).failNext(1, 503, { requests: 'all' })
    const port = Number(new URL(server.url).port)
    await server.close()
    servers.splice(servers.indexOf(server), 1)
    await vi.waitFor(() => expect(inspectSession(watcher).inspect().feed?.connected).toBe(false))
    const again = await serve({ handler: createSessionHandler({ store: server.store }), port })
    servers.push(again)
    await vi.waitFor(() => expect(inspectSession(watcher).inspect().feed).toMatchObject({ connected: true, connects: 2 }), {
      timeout: 5000,
    })
    expect(inspectSession(watcher).inspect().faults.remaining).toBe(0)
  })

  it('lists the runs of the session, and a page without Web Locks says so', async () => {
    const server = await start()
    const page = client(server, 'inspect-runs')
    expect(inspectSession(page).inspect().runs).toEqual([])
    expect(await inspectSession(page).livePages()).toEqual([])
  })
})
