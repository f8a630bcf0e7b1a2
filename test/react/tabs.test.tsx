// @vitest-environment jsdom
import { QueryClient } from '@tanstack/react-query'
import { act, cleanup, fireEvent, render, screen } from '@testing-library/react'
import { afterEach, expect, it, vi } from 'vitest'
import { memoryLocalCopy, SessionProvider, useVariable } from '../../src/react/index.js'
import { setupMockServer } from '../msw-server.js'

// Two tabs of one session without tabSync(): each sends its own changes, and a tab shows the
// other's once it fetches the session again, as it does when the person comes back to it.
const mock = setupMockServer()
afterEach(() => cleanup())

function Field({ tab }: { tab: string }) {
  const [email, setEmail] = useVariable<string>('email', '')
  return <input aria-label={`email in ${tab}`} value={email} onChange={(event) => setEmail(event.target.value)} />
}

it('two tabs converge without tabSync(): the other tab shows the change when it is looked at again', async () => {
  const storage = memoryLocalCopy() // one browser: the tabs share the device's copy
  const tab = (name: string) => (
    <SessionProvider
      endpoint="http://localhost/api/session"
      sessionId="tabs-session-1"
      storage={storage}
      queryClient={new QueryClient()}
      debounceMs={10}
    >
      <Field tab={name} />
    </SessionProvider>
  )
  render(
    <>
      {tab('one')}
      {tab('two')}
    </>,
  )
  fireEvent.change(screen.getByLabelText('email in one'), { target: { value: 'ada@example.com' } })
  await vi.waitFor(async () => expect((await mock.store.get('tabs-session-1'))?.variables).toEqual({ email: 'ada@example.com' }))
  expect(screen.getByLabelText<HTMLInputElement>('email in two').value).toBe('') // not told yet

  await act(async () => {
    window.dispatchEvent(new Event('visibilitychange')) // the person comes back to a tab
  })
  await vi.waitFor(() => expect(screen.getByLabelText<HTMLInputElement>('email in two').value).toBe('ada@example.com'))
  expect(mock.posts()).toHaveLength(1) // each change sent once
})
