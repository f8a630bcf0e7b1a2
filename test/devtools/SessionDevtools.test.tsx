// @vitest-environment jsdom
// <SessionDevtools />: one panel for the provider's client (StrictMode included), none when not
// enabled, and nothing left behind — neither the panel nor what it provoked — when it goes.
import { act, render } from '@testing-library/react'
import { StrictMode } from 'react'
import { afterEach, expect, it, vi } from 'vitest'
import type { SessionClient } from '../../src/client/index.js'
import { SessionDevtools } from '../../src/devtools/index.js'
import { inspectSession } from '../../src/devtools/inspector.js'
import { memoryLocalCopy, SessionProvider, useSessionClient } from '../../src/react/index.js'
import { setupMockServer } from '../msw-server.js'

setupMockServer()
const storage = memoryLocalCopy()
const hosts = () => document.querySelectorAll('workflow-session-devtools')
let seen: SessionClient | undefined
function Spy() {
  seen = useSessionClient()
  return null
}

afterEach(() => {
  seen = undefined
})

function App({ enabled, devtools = true, theme }: { enabled?: boolean; devtools?: boolean; theme?: 'light' | 'dark' }) {
  return (
    <StrictMode>
      <SessionProvider endpoint="/api/session" sessionId="devtools-react-1" storage={storage}>
        <Spy />
        {devtools && <SessionDevtools {...(enabled !== undefined && { enabled })} {...(theme && { theme })} />}
      </SessionProvider>
    </StrictMode>
  )
}

it('mounts one panel on the provider’s client outside the app’s tree (in development, StrictMode included), and removes it with the component', async () => {
  const { container, rerender, unmount } = render(<App />)
  await vi.waitFor(() => expect(hosts()).toHaveLength(1)) // its code loads first
  await settle()
  expect(hosts()).toHaveLength(1) // one, StrictMode's second effect included
  expect(container.querySelector('workflow-session-devtools')).toBeNull() // on document.body, not in the app
  expect(hosts()[0]!.shadowRoot!.querySelector('button')!.getAttribute('aria-label')).toBe('Open session devtools')

  // What the panel provoked goes with the last panel of the client: the hold and the failures.
  const inspector = inspectSession(seen!)
  act(() => {
    inspector.setOffline(true)
    inspector.failNext(5, 503)
  })
  expect(seen!.getStatus().isOnline).toBe(false)
  // A prop that changes mounts the panel again: what the person provoked stays.
  rerender(<App theme="dark" />)
  await vi.waitFor(() => expect(hosts()[0]?.className).toContain('theme-dark'))
  await settle()
  expect(inspector.inspect()).toMatchObject({ heldOffline: true, faults: { remaining: 5 } })
  expect(seen!.getStatus().isOnline).toBe(false)
  rerender(<App devtools={false} />)
  expect(hosts()).toHaveLength(0)
  await vi.waitFor(() => expect(seen!.getStatus().isOnline).toBe(true))
  expect(inspector.inspect()).toMatchObject({ heldOffline: false, faults: { remaining: 0 } })
  unmount()
})

it('renders nothing when not enabled, nor when it goes before its code has loaded', async () => {
  const disabled = render(<App enabled={false} />)
  await settle()
  expect(hosts()).toHaveLength(0)
  disabled.unmount()
  render(<App />).unmount()
  await settle()
  expect(hosts()).toHaveLength(0)
})

/** Long enough for the panel's code to load and mount, had it been asked to. */
const settle = () => act(() => new Promise((resolve) => setTimeout(resolve, 100)))
