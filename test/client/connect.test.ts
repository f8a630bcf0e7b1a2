// @vitest-environment jsdom
import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { connectToPage, createSessionClient, memoryLocalCopy } from '../../src/client/index.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

// connectToPage: the wiring the React provider does, for an app without React.
const mock = setupMockServer()
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
})
afterEach(() => {
  vi.useRealTimers()
})

const makeClient = (sessionId: string) => createSessionClient({ endpoint: ENDPOINT, sessionId, storage: memoryLocalCopy(), locks: null })

it('sends one patch per pause in writing, and at least every maxWaitMs while writing goes on', async () => {
  const client = makeClient('connect-1')
  const disconnect = connectToPage(client, { debounceMs: 300, maxWaitMs: 1000 })
  await vi.advanceTimersByTimeAsync(0) // started: the local copy is read
  for (let i = 0; i < 30; i++) {
    client.set('email', `a${i}@b.c`)
    await vi.advanceTimersByTimeAsync(20) // 30 keystrokes in 600 ms: no pause long enough
  }
  expect(mock.posts()).toHaveLength(0)
  await vi.advanceTimersByTimeAsync(300)
  await vi.waitFor(() => expect(mock.posts()).toHaveLength(1))
  expect(mock.posts()[0]!.body).toMatchObject({ variables: { email: 'a29@b.c' } })

  for (let i = 0; i < 60; i++) {
    client.set('note', `n${i}`)
    await vi.advanceTimersByTimeAsync(50) // 3 s of typing without a 300 ms pause
  }
  expect(mock.posts().length).toBeGreaterThanOrEqual(3) // the maximum wait made patches meanwhile
  await disconnect()
})

it('sends what is unconfirmed with keepalive when the page hides, follows the online state, and stops on disconnect', async () => {
  const client = makeClient('connect-2')
  const disconnect = connectToPage(client, { debounceMs: 10_000 })
  await vi.advanceTimersByTimeAsync(0)
  client.set('draft', 'typed before hiding')
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'hidden' })
  document.dispatchEvent(new Event('visibilitychange'))
  await vi.waitFor(() => expect(mock.posts()).toHaveLength(1))
  expect(mock.posts()[0]!.body).toMatchObject({ variables: { draft: 'typed before hiding' } })

  // Shown again: the session is fetched again (another tab's or device's changes appear).
  await mock.store.apply('connect-2', { variables: { fromElsewhere: true } })
  Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => 'visible' })
  document.dispatchEvent(new Event('visibilitychange'))
  await vi.waitFor(() => expect(client.get('fromElsewhere')).toBe(true))

  window.dispatchEvent(new Event('offline'))
  expect(client.getStatus().isOnline).toBe(false)
  window.dispatchEvent(new Event('online'))
  expect(client.getStatus().isOnline).toBe(true)

  client.set('late', 'held back by the debounce')
  await disconnect() // sends what the debounce held back
  await vi.waitFor(() => expect(mock.posts()).toHaveLength(2))
  client.set('after', 'not wired any more')
  await vi.advanceTimersByTimeAsync(20_000)
  expect(mock.posts()).toHaveLength(2)
  Reflect.deleteProperty(document, 'visibilityState')
})

it('asks before the page is left only while changes are unconfirmed, and not after disconnect (warnOnUnsavedChanges)', async () => {
  const client = makeClient('connect-3')
  const disconnect = connectToPage(client, { debounceMs: 10_000, warnOnUnsavedChanges: true })
  await vi.advanceTimersByTimeAsync(0)
  const leave = () => {
    const event = new Event('beforeunload', { cancelable: true })
    window.dispatchEvent(event)
    return event.defaultPrevented
  }
  expect(leave()).toBe(false)
  client.set('draft', 'unsaved words')
  expect(leave()).toBe(true)
  await client.flush()
  expect(leave()).toBe(false)
  client.set('draft', 'unsaved again')
  await disconnect()
  expect(leave()).toBe(false)
})
