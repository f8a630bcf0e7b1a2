// @vitest-environment jsdom
import { cleanup, render } from '@testing-library/react'
import { afterEach, expect, it, vi } from 'vitest'
import { createSessionClient, memoryLocalCopy, type SessionPlugin, SessionProvider } from '../../src/react/index.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

// The provider wires its client to the page once: a prop that does not make a new client or a new
// debounce (the unsaved-changes warning) changes only what it is about, and a stop followed at
// once by a start leaves the client running.
setupMockServer()
afterEach(cleanup)

it('turns the unsaved-changes warning on and off without stopping and starting the client', async () => {
  const client = createSessionClient({ endpoint: ENDPOINT, sessionId: 'wiring-session-1', storage: memoryLocalCopy(), locks: null })
  const start = vi.spyOn(client, 'start')
  const stop = vi.spyOn(client, 'stop')
  const app = (warn: boolean) => (
    <SessionProvider client={client} warnOnUnsavedChanges={warn}>
      <p>form</p>
    </SessionProvider>
  )
  const { rerender } = render(app(false))
  await vi.waitFor(() => expect(start).toHaveBeenCalledTimes(1))
  const leave = () => {
    const event = new Event('beforeunload', { cancelable: true })
    window.dispatchEvent(event)
    return event.defaultPrevented
  }
  client.set('draft', 'unsaved words')
  expect(leave()).toBe(false)
  rerender(app(true))
  expect(leave()).toBe(true)
  rerender(app(false))
  expect(leave()).toBe(false)
  expect(start).toHaveBeenCalledTimes(1)
  expect(stop).not.toHaveBeenCalled()
  await client.flush()
})

it('keeps running, plugins and all, when started again while it was stopping', async () => {
  let active = 0
  const probe: SessionPlugin = {
    name: 'probe',
    start: () => {
      active++
      return () => {
        active--
      }
    },
  }
  const client = createSessionClient({
    endpoint: ENDPOINT,
    sessionId: 'wiring-session-2',
    storage: memoryLocalCopy(),
    locks: null,
    plugins: [probe],
  })
  await client.start()
  expect(active).toBe(1)
  client.set('draft', 'a write the stop waits for')
  const stopping = client.stop()
  await client.start()
  await stopping
  expect(active).toBe(1)
  await client.flush()
  await client.stop()
  expect(active).toBe(0)
})
