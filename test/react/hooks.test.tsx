// @vitest-environment jsdom
import 'fake-indexeddb/auto'
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { act, fireEvent, render, screen } from '@testing-library/react'
import { http, HttpResponse } from 'msw'
import { StrictMode } from 'react'
import { beforeEach, describe, expect, it, vi } from 'vitest'
import {
  type LocalCopyStorage,
  memoryLocalCopy,
  SessionProvider,
  type SessionState,
  useRun,
  useSessionState,
  useSyncStatus,
  useVariable,
} from '../../src/react/index.js'
import { newGate } from '../gate.js'
import { holdNextPost, setupMockServer } from '../msw-server.js'
import { fakeTimePerTest } from './fake-time.js'

const mock = setupMockServer({
  register: ({ variables }) => ({ output: `registered ${String(variables.email)}`, variables: { status: 'done' } }),
})

let sessionNumber = 0
let sessionId = ''
let storage: LocalCopyStorage
const renders: Record<string, number> = {}

const advance = fakeTimePerTest()

beforeEach(() => {
  sessionId = `react-session-${++sessionNumber}`
  storage = memoryLocalCopy() // IndexedDB itself is proven in the cache tests and in Chromium
  for (const key of Object.keys(renders)) delete renders[key]
})

function Field({ name }: { name: string }) {
  renders[name] = (renders[name] ?? 0) + 1
  const [value, setValue] = useVariable<string>(name, '')
  return <input aria-label={name} value={value} onChange={(event) => setValue(event.target.value)} />
}

function Status() {
  const status = useSyncStatus()
  return (
    <output aria-label="status">
      {status.error ? `error ${status.error.code}` : status.isDirty ? (status.isSyncing ? 'saving' : 'dirty') : 'saved'}
    </output>
  )
}

function App({ children, ...props }: { children: React.ReactNode; debounceMs?: number; maxWaitMs?: number }) {
  return (
    <SessionProvider endpoint="/api/session" sessionId={sessionId} storage={storage} {...props}>
      {children}
    </SessionProvider>
  )
}

const type = (name: string, value: string) => fireEvent.change(screen.getByLabelText(name), { target: { value } })
const patches = () => mock.posts().filter((r) => !r.path.includes('/run/'))

describe('useVariable', () => {
  it('shows a write at once, before any request is sent', async () => {
    render(
      <App>
        <Field name="email" />
      </App>,
    )
    await advance(10)
    type('email', 'a@b.c')
    expect(screen.getByLabelText<HTMLInputElement>('email').value).toBe('a@b.c')
    expect(patches()).toHaveLength(0)
  })

  it('does not render a component that reads another variable', async () => {
    render(
      <App>
        <Field name="a" />
        <Field name="b" />
      </App>,
    )
    await advance(10)
    const before = { a: renders.a!, b: renders.b! }
    for (let i = 1; i <= 20; i++) type('a', 'x'.repeat(i))
    await advance(1000)
    expect(renders.a! - before.a).toBe(20)
    expect(renders.b! - before.b).toBe(0)
  })

  it('sends 30 keystrokes in one debounce window as one POST with only the changed key', async () => {
    render(
      <App>
        <Field name="email" />
        <Field name="name" />
      </App>,
    )
    await advance(10)
    for (let i = 1; i <= 30; i++) {
      type('email', 'e'.repeat(i))
      await advance(100)
    }
    expect(patches()).toHaveLength(0)
    await advance(800)
    expect(patches()).toHaveLength(1)
    expect(patches()[0]!.body).toEqual({ variables: { email: 'e'.repeat(30) }, deleted: [], clientId: expect.any(String), seq: 1 })
    await advance(2000)
    expect(patches()).toHaveLength(1)
  })

  it('works the same under StrictMode: double effects make one GET and one POST, and nothing is logged', async () => {
    await mock.store.apply(sessionId, { variables: { name: 'Ada' } })
    render(
      <StrictMode>
        <App>
          <Field name="email" />
          <Field name="name" />
        </App>
      </StrictMode>,
    )
    await advance(10)
    expect(screen.getByLabelText<HTMLInputElement>('name').value).toBe('Ada')
    for (let i = 1; i <= 5; i++) type('email', 'e'.repeat(i))
    await advance(1000)
    expect(mock.requests.filter((r) => r.method === 'GET')).toHaveLength(1)
    expect(patches()).toHaveLength(1)
    expect(patches()[0]!.body).toMatchObject({ variables: { email: 'eeeee' }, seq: 1 })
    expect(await mock.store.get(sessionId)).toMatchObject({ version: 2, variables: { name: 'Ada', email: 'eeeee' } })
  })

  it('caps a long burst with maxWait', async () => {
    render(
      <App debounceMs={800} maxWaitMs={3000}>
        <Field name="notes" />
      </App>,
    )
    await advance(10)
    for (let i = 1; i <= 50; i++) {
      type('notes', 'n'.repeat(i))
      await advance(200) // never 800 ms quiet: only maxWait can send during the burst
    }
    const duringBurst = patches().length
    expect(duringBurst).toBeGreaterThanOrEqual(3)
    expect(duringBurst).toBeLessThanOrEqual(4)
    await advance(1000)
    expect((await mock.store.get(sessionId))?.variables.notes).toBe('n'.repeat(50))
  })

  it('makes no request when nothing changed', async () => {
    render(
      <App>
        <Field name="email" />
      </App>,
    )
    await advance(5000)
    type('email', '')
    await advance(5000)
    expect(patches()).toHaveLength(0)
  })

  it('accepts an updater function', async () => {
    function Counter() {
      const [count, setCount] = useVariable<number>('count', 0)
      return <button onClick={() => setCount((n) => n + 1)}>count {count}</button>
    }
    render(
      <App>
        <Counter />
      </App>,
    )
    await advance(10)
    fireEvent.click(screen.getByRole('button'))
    fireEvent.click(screen.getByRole('button'))
    expect(screen.getByRole('button').textContent).toBe('count 2')
  })
})

describe('sync status', () => {
  it('goes dirty → saving → saved', async () => {
    const { gate, release } = newGate()
    mock.server.use(holdNextPost(`*/api/session/${sessionId}`, gate))
    render(
      <App>
        <Field name="email" />
        <Status />
      </App>,
    )
    await advance(10)
    expect(screen.getByLabelText('status').textContent).toBe('saved')
    type('email', 'a')
    expect(screen.getByLabelText('status').textContent).toBe('dirty')
    await advance(800)
    expect(screen.getByLabelText('status').textContent).toBe('saving')
    release()
    await advance(10)
    expect(screen.getByLabelText('status').textContent).toBe('saved')
  })

  it('shows a server error while retrying, then saved', async () => {
    mock.server.use(
      http.post(
        `*/api/session/${sessionId}`,
        () => HttpResponse.json({ error: { code: 'internal_error', message: 'down' } }, { status: 500 }),
        { once: true },
      ),
    )
    render(
      <App>
        <Field name="email" />
        <Status />
      </App>,
    )
    await advance(10)
    type('email', 'a')
    await advance(810)
    expect(screen.getByLabelText('status').textContent).toBe('error internal_error')
    await advance(1000)
    expect(screen.getByLabelText('status').textContent).toBe('saved')
    expect(await mock.store.get(sessionId)).toMatchObject({ version: 1, variables: { email: 'a' } })
  })
})

describe('useSessionState', () => {
  it('renders only for what it reads', async () => {
    let state: SessionState | undefined
    function MethodsOnly() {
      renders.methods = (renders.methods ?? 0) + 1
      state = useSessionState()
      return null
    }
    function ReadsVariables() {
      renders.variables = (renders.variables ?? 0) + 1
      return <pre aria-label="all">{JSON.stringify(useSessionState().variables)}</pre>
    }
    render(
      <App>
        <MethodsOnly />
        <ReadsVariables />
      </App>,
    )
    await advance(10)
    const before = { ...renders }
    act(() => state!.setVariable('a', 1))
    act(() => state!.setVariable<number>('a', (n) => (n ?? 0) + 1))
    expect(screen.getByLabelText('all').textContent).toBe('{"a":2}')
    expect(state!.getVariable('a')).toBe(2)
    expect(renders.methods! - before.methods!).toBe(0)
    expect(renders.variables! - before.variables!).toBe(2)
  })

  it('flush resolves after the server has the change, and rejects with the typed error on a 4xx', async () => {
    let state: SessionState | undefined
    function Grab() {
      state = useSessionState()
      return null
    }
    render(
      <App>
        <Grab />
      </App>,
    )
    await advance(10)
    act(() => state!.setVariable('email', 'a@b.c'))
    let flushed = false
    const flush = state!.flush().then(() => (flushed = true))
    await advance(10)
    await flush
    expect(flushed).toBe(true)
    expect((await mock.store.get(sessionId))?.variables).toEqual({ email: 'a@b.c' })

    mock.server.use(
      http.post(`*/api/session/${sessionId}`, () => HttpResponse.json({ error: { code: 'too_large', message: 'big' } }, { status: 413 }), {
        once: true,
      }),
    )
    act(() => state!.setVariable('email', 'x'))
    const failure = state!.flush().catch((error: unknown) => error)
    await advance(10)
    expect(await failure).toMatchObject({ name: 'SessionError', code: 'too_large' })
  })

  it('has the shape the session-state spec defines: { sessionId, variables, meta: { lastSyncedAt, isDirty } }', async () => {
    // Written from the spec's interface, not from this package's types.
    interface SpecSessionState {
      sessionId: string
      variables: Record<string, unknown>
      meta: { lastSyncedAt: number | null; isDirty: boolean }
      getVariable(key: string): unknown
      setVariable(key: string, value: unknown): void
    }
    const seen: Array<{ isDirty: boolean; lastSyncedAt: number | null; email: unknown }> = []
    let state: SpecSessionState | undefined
    function SpecReader() {
      const spec: SpecSessionState = useSessionState()
      state = spec
      seen.push({ isDirty: spec.meta.isDirty, lastSyncedAt: spec.meta.lastSyncedAt, email: spec.variables.email })
      return null
    }
    render(
      <App>
        <SpecReader />
      </App>,
    )
    await advance(10)
    expect(state!.sessionId).toBe(sessionId)
    expect(state!.meta.isDirty).toBe(false)
    const before = Date.now()
    act(() => state!.setVariable('email', 'a@b.c'))
    expect(state!.meta.isDirty).toBe(true)
    expect(state!.getVariable('email')).toBe('a@b.c')
    await advance(1000) // the debounce, then the answer
    expect(state!.meta.isDirty).toBe(false)
    expect(state!.meta.lastSyncedAt).toBeGreaterThanOrEqual(before)
    expect(seen.at(-1)).toEqual({ isDirty: false, lastSyncedAt: state!.meta.lastSyncedAt, email: 'a@b.c' })
    // The deprecated alias is the same object, read under the same subscription.
    // eslint-disable-next-line @typescript-eslint/no-deprecated -- the deprecated alias, tested while it is there
    expect((state as SessionState).status).toBe(state!.meta)
  })

  it('throws a clear error when used outside SessionProvider', () => {
    vi.spyOn(console, 'error').mockImplementation(() => {}) // React reports the render error
    function Outside() {
      useSessionState()
      return null
    }
    expect(() => render(<Outside />)).toThrow(/inside <SessionProvider>/)
    vi.mocked(console.error).mockRestore()
  })
})

describe('useRun', () => {
  function Register() {
    const [, setEmail] = useVariable<string>('email', '')
    const { run, isRunning, output, error } = useRun<string>('register')
    return (
      <>
        <button onClick={() => setEmail('ada@example.com')}>Fill</button>
        <button onClick={() => run()}>Run</button>
        <output aria-label="run">
          {isRunning ? 'running' : error ? `error ${(error as { code?: string }).code}` : (output ?? 'idle')}
        </output>
      </>
    )
  }

  it('sends the pending patch first, then runs the step on it', async () => {
    const { gate, release } = newGate()
    mock.server.use(holdNextPost(`*/api/session/${sessionId}/runs`, gate))
    render(
      <App>
        <Register />
      </App>,
    )
    await advance(10)
    fireEvent.click(screen.getByText('Fill'))
    fireEvent.click(screen.getByText('Run'))
    await advance(10)
    expect(screen.getByLabelText('run').textContent).toBe('running')
    release()
    await advance(10)
    expect(screen.getByLabelText('run').textContent).toBe('registered ada@example.com')
    const order = mock.requests.filter((r) => r.method === 'POST').map((r) => r.path.replace(`/api/session/${sessionId}`, ''))
    expect(order).toEqual(['', '/runs'])
    expect(await mock.store.get(sessionId)).toMatchObject({ variables: { email: 'ada@example.com', status: 'done' }, version: 2 })
  })

  it('does not call the step when the flush fails, and says why', async () => {
    mock.server.use(
      http.post(
        `*/api/session/${sessionId}`,
        () => HttpResponse.json({ error: { code: 'invalid_patch', message: 'no' } }, { status: 400 }),
        { once: true },
      ),
    )
    render(
      <App>
        <Register />
      </App>,
    )
    await advance(10)
    fireEvent.click(screen.getByText('Fill'))
    fireEvent.click(screen.getByText('Run'))
    await advance(10)
    expect(screen.getByLabelText('run').textContent).toBe('error invalid_patch')
    expect(mock.requests.some((r) => r.path.endsWith('/run/register'))).toBe(false)
  })
})

describe('SessionProvider', () => {
  it("uses the app's QueryClient when there is one", async () => {
    const queryClient = new QueryClient()
    render(
      <QueryClientProvider client={queryClient}>
        <App>
          <Field name="email" />
        </App>
      </QueryClientProvider>,
    )
    await advance(10)
    expect(queryClient.getQueryCache().findAll({ queryKey: ['workflow-session'] })).toHaveLength(1)
  })

  it('puts the session query and the run mutations in the QueryClient passed as a prop (what devtools show)', async () => {
    const queryClient = new QueryClient()
    function Register() {
      const { run, output } = useRun<string>('register')
      return <button onClick={() => run()}>{output ?? 'Register'}</button>
    }
    render(
      <SessionProvider endpoint="/api/session" sessionId={sessionId} storage={storage} queryClient={queryClient}>
        <Register />
      </SessionProvider>,
    )
    await advance(10)
    const [query] = queryClient.getQueryCache().findAll({ queryKey: ['workflow-session'] })
    expect(query?.queryKey).toEqual(['workflow-session', '/api/session', sessionId])
    expect(query?.state.status).toBe('success')
    fireEvent.click(screen.getByText('Register'))
    await advance(10)
    expect(screen.getByRole('button').textContent).toBe('registered undefined')
    const mutations = queryClient.getMutationCache().findAll({ mutationKey: ['workflow-session', 'run'] })
    expect(mutations.map((mutation) => [mutation.options.mutationKey, mutation.state.status])).toEqual([
      [['workflow-session', 'run', sessionId, 'register'], 'success'],
    ])
  })

  it('shows server values after the first fetch', async () => {
    await mock.store.apply(sessionId, { variables: { email: 'server@b.c' } })
    render(
      <App>
        <Field name="email" />
      </App>,
    )
    await advance(10)
    expect(screen.getByLabelText<HTMLInputElement>('email').value).toBe('server@b.c')
  })
})
