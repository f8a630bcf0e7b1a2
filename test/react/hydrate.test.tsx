// @vitest-environment jsdom
import 'fake-indexeddb/auto'
import { act } from '@testing-library/react'
import { hydrateRoot, type Root } from 'react-dom/client'
import { renderToString } from 'react-dom/server'
import { afterEach, expect, it } from 'vitest'
import { memoryLocalCopy, SessionProvider, useSessionClient, useVariable } from '../../src/react/index.js'
import { setupMockServer } from '../msw-server.js'

const mock = setupMockServer()
let root: Root | undefined
afterEach(() => act(() => root?.unmount()))

function Form() {
  const [email] = useVariable<string>('email', 'nobody@example.com')
  return <p>{email}</p>
}

it('hydrates server HTML without a mismatch, then shows the stored value', async () => {
  await mock.store.apply('ssr-session-2', { variables: { email: 'ada@example.com' } })
  const app = (
    <SessionProvider endpoint="/api/session" sessionId="ssr-session-2" storage={memoryLocalCopy()}>
      <Form />
    </SessionProvider>
  )
  const container = document.createElement('div')
  container.innerHTML = renderToString(app)
  document.body.append(container)
  // A mismatch would be reported through console.error, which fails the test (test/setup.ts).
  await act(async () => {
    root = hydrateRoot(container, app)
  })
  await act(() => new Promise((resolve) => setTimeout(resolve, 50)))
  expect(container.textContent).toBe('ada@example.com')
})

it('asks before leaving only while changes are unconfirmed (warnOnUnsavedChanges)', async () => {
  let client: ReturnType<typeof useSessionClient> | undefined
  function Grab() {
    client = useSessionClient()
    return null
  }
  const container = document.createElement('div')
  document.body.append(container)
  await act(async () => {
    const { createRoot } = await import('react-dom/client')
    root = createRoot(container)
    root.render(
      <SessionProvider endpoint="/api/session" sessionId="warn-session-1" storage={memoryLocalCopy()} warnOnUnsavedChanges>
        <Grab />
      </SessionProvider>,
    )
  })
  const leave = () => {
    const event = new Event('beforeunload', { cancelable: true })
    window.dispatchEvent(event)
    return event.defaultPrevented
  }
  expect(leave()).toBe(false)
  act(() => client!.set('draft', 'unsaved words'))
  expect(leave()).toBe(true)
  await act(() => client!.flush())
  expect(leave()).toBe(false)
})
