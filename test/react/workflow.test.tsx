// @vitest-environment jsdom
import { act, cleanup, fireEvent, render, screen, waitFor } from '@testing-library/react'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  type LocalCopyStorage,
  memoryLocalCopy,
  SessionProvider,
  useSessions,
  useWorkflow,
  workflowDataKey,
} from '../../src/react/index.js'
import { setupMockServer } from '../msw-server.js'

const mock = setupMockServer({}, { authorize: (request) => request.headers.get('x-user') })
const renders: Record<string, number> = {}
let storage: LocalCopyStorage
let n = 0
let sessionId = ''

beforeEach(() => {
  storage = memoryLocalCopy()
  sessionId = `react-workflow-${++n}`
  for (const key of Object.keys(renders)) delete renders[key]
  localStorage.clear()
})
afterEach(cleanup)

const count = (name: string) => (renders[name] = (renders[name] ?? 0) + 1)

function Field({ workflow, field }: { workflow: string; field: string }) {
  count(`${workflow}.${field}`)
  const scope = useWorkflow<Record<string, string>>(workflow)
  return (
    <input aria-label={`${workflow} ${field}`} value={scope.get(field, '')} onChange={(event) => scope.set(field, event.target.value)} />
  )
}

function Step({ workflow }: { workflow: string }) {
  count(`${workflow}.step`)
  const scope = useWorkflow(workflow)
  return (
    <p>
      {scope.flow}/{scope.step ?? 'start'}
      <button onClick={() => scope.setStep('next')}>next {workflow}</button>
      <button onClick={() => scope.enterSubflow('sub', 'inner')}>enter {workflow}</button>
      <button onClick={() => scope.exitSubflow('after')}>exit {workflow}</button>
    </p>
  )
}

describe('useWorkflow', () => {
  it('renders a component only when a field it reads changes', async () => {
    render(
      <SessionProvider endpoint="/api/session" sessionId={sessionId} storage={storage}>
        <Field workflow="signup" field="email" />
        <Field workflow="signup" field="plan" />
        <Step workflow="signup" />
        <Field workflow="checkout" field="email" />
      </SessionProvider>,
    )
    await waitFor(() => expect(renders['signup.email']).toBeGreaterThan(0))
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)))
    const before = { ...renders }
    for (const text of ['a', 'ad', 'ada']) fireEvent.change(screen.getByLabelText('signup email'), { target: { value: text } })
    expect(screen.getByLabelText<HTMLInputElement>('signup email').value).toBe('ada')
    expect(renders['signup.email']! - before['signup.email']!).toBe(3)
    expect(renders['signup.plan']).toBe(before['signup.plan'])
    expect(renders['signup.step']).toBe(before['signup.step'])
    expect(renders['checkout.email']).toBe(before['checkout.email'])

    fireEvent.click(screen.getByText('next signup'))
    expect(screen.getByText(/signup\/next/)).toBeTruthy()
    expect(renders['signup.email']! - before['signup.email']!).toBe(3)
    fireEvent.click(screen.getByText('enter signup'))
    expect(screen.getByText(/sub\/inner/)).toBeTruthy()
    fireEvent.click(screen.getByText('exit signup'))
    expect(screen.getByText(/signup\/after/)).toBeTruthy()
  })

  it('renders once on mount, without an extra render for its first reads', async () => {
    render(
      <SessionProvider endpoint="/api/session" sessionId={sessionId} storage={storage}>
        <Field workflow="solo" field="x" />
      </SessionProvider>,
    )
    await act(() => new Promise((resolve) => setTimeout(resolve, 20)))
    expect(renders['solo.x']).toBe(1)
  })
})

describe('useSessions', () => {
  function Sessions() {
    const { sessions, currentId, open, start, remove } = useSessions()
    const signup = useWorkflow<{ email: string }>('signup')
    return (
      <>
        <p aria-label="current">{currentId}</p>
        <p aria-label="email">{signup.get('email', '')}</p>
        <ul>
          {sessions.map((session) => (
            <li key={session.sessionId}>
              <button onClick={() => open(session.sessionId)}>open {session.sessionId}</button>
              <button onClick={() => void remove(session.sessionId)}>delete {session.sessionId}</button>
            </li>
          ))}
        </ul>
        <button onClick={() => start()}>new session</button>
      </>
    )
  }

  it('lists sessions newest first, opens one, starts a new one, and deletes one', async () => {
    await mock.store.create('older-session', { variables: { [workflowDataKey('signup', 'email')]: 'old@example.com' }, userId: 'ada' })
    await new Promise((resolve) => setTimeout(resolve, 5))
    await mock.store.create('newer-session', { variables: { [workflowDataKey('signup', 'email')]: 'new@example.com' }, userId: 'ada' })
    await mock.store.create('someone-elses', { variables: { secret: 1 }, userId: 'eve' })
    render(
      <SessionProvider endpoint="/api/session" sessionId={undefined} storage={storage} headers={{ 'x-user': 'ada' }}>
        <Sessions />
      </SessionProvider>,
    )
    await waitFor(() =>
      expect(screen.getAllByText(/^open /).map((b) => b.textContent)).toEqual(['open newer-session', 'open older-session']),
    )

    fireEvent.click(screen.getByText('open older-session'))
    await waitFor(() => expect(screen.getByLabelText('email').textContent).toBe('old@example.com'))
    expect(screen.getByLabelText('current').textContent).toBe('older-session')
    expect(localStorage.getItem('workflow-session:id:/api/session')).toBe('older-session')

    fireEvent.click(screen.getByText('new session'))
    await waitFor(() => expect(screen.getByLabelText('current').textContent).not.toBe('older-session'))
    expect(screen.getByLabelText('email').textContent).toBe('')

    fireEvent.click(screen.getByText('delete newer-session'))
    await waitFor(() => expect(screen.queryByText('open newer-session')).toBeNull())
    expect(await mock.store.get('newer-session')).toBeNull()
    expect(await mock.store.get('older-session')).not.toBeNull()
  })
})
