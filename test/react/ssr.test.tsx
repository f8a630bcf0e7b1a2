// @vitest-environment jsdom
import { QueryClient, QueryClientProvider } from '@tanstack/react-query'
import { act } from '@testing-library/react'
import { lazy, type ReactNode, Suspense, useEffect } from 'react'
import { hydrateRoot, type Root } from 'react-dom/client'
import { renderToString } from 'react-dom/server'
import { afterEach, expect, it } from 'vitest'
import {
  memoryLocalCopy,
  SessionProvider,
  useRun,
  useSessions,
  useSessionState,
  useSyncStatus,
  useVariable,
  useWorkflow,
} from '../../src/react/index.js'
import { setupMockServer } from '../msw-server.js'

// The server renders run with the browser's globals hidden (getters on globalThis that answer
// undefined, as in Node); the hydration tests then run in jsdom.
const mock = setupMockServer()
let root: Root | undefined
afterEach(() => act(() => root?.unmount()))

function Form() {
  const [email] = useVariable<string>('email', 'nobody@example.com')
  const { isDirty } = useSyncStatus()
  return (
    <p>
      {email} {isDirty ? 'unsaved' : 'saved'}
    </p>
  )
}

/** Every hook of the package, as a page rendered on the server uses them. */
function Everything() {
  const [email] = useVariable<string>('email', 'nobody@example.com')
  const { meta, variables } = useSessionState()
  const { isRunning } = useRun('register')
  const { sessions, currentId } = useSessions()
  const signup = useWorkflow<{ plan: string }>('signup')
  return (
    <p>
      {email}|{meta.isHydrated ? 'loaded' : 'loading'}|{meta.isDirty ? 'unsaved' : 'saved'}|{Object.keys(variables).length}|
      {String(isRunning)}|{sessions.length}|{currentId}|{signup.get('plan', 'free')}
    </p>
  )
}

/**
 * Renders `app` while recording each look at the globals a server render must not reach for:
 * the DOM and the browser's storage (getters on globalThis that answer undefined, as in Node), the
 * values Next.js calls unstable in a prerender (random numbers, random bytes, the clock), and
 * Node 25+'s own `localStorage` (which prints an ExperimentalWarning when looked at).
 */
function renderWatched(app: React.ReactElement): { html: string; touched: string[] } {
  const touched: string[] = []
  const restore: Array<() => void> = []
  const replace = (target: object, name: string, descriptor: PropertyDescriptor) => {
    const saved = Object.getOwnPropertyDescriptor(target, name)
    Object.defineProperty(target, name, { configurable: true, ...descriptor })
    restore.push(() => (saved ? Object.defineProperty(target, name, saved) : delete (target as Record<string, unknown>)[name]))
  }
  for (const name of ['window', 'document', 'localStorage', 'sessionStorage', 'indexedDB', 'navigator', 'BroadcastChannel']) {
    replace(globalThis, name, { get: () => (touched.push(name), undefined) })
  }
  const spy = <F extends (...args: never[]) => unknown>(target: object, name: string, label: string) => {
    const original = (target as Record<string, F>)[name]!
    replace(target, name, { writable: true, value: (...args: Parameters<F>) => (touched.push(label), original.apply(target, args)) })
  }
  spy(crypto, 'getRandomValues', 'crypto.getRandomValues()')
  spy(crypto, 'randomUUID', 'crypto.randomUUID()')
  spy(Math, 'random', 'Math.random()')
  spy(Date, 'now', 'Date.now()')
  const RealDate = Date
  replace(globalThis, 'Date', {
    writable: true,
    value: new Proxy(RealDate, {
      construct: (target, args: unknown[], newTarget) => (
        args.length === 0 && touched.push('new Date()'),
        Reflect.construct(target, args, newTarget)
      ),
      apply: (target, self, args: unknown[]) => (touched.push('Date()'), Reflect.apply(target, self, args)),
    }),
  })
  try {
    return { html: renderToString(app), touched }
  } finally {
    for (const undo of restore.reverse()) undo()
  }
}

// `typeof window` / `navigator?.onLine` feature checks (React, use-debounce, ours) are fine: they
// see undefined and carry on. Storage, the DOM and unstable values are never reached for.
const reachedFor = (touched: string[]) => touched.filter((name) => name !== 'window' && name !== 'navigator')
// The provider's own QueryClient (when the app has none): TanStack Query before 5.62.12 reads
// the clock when one is made (the oldest-peers project runs 5.59), the provider itself does not.
const notTheClock = (name: string) => !/Date/.test(name)

it('renders on the server without the DOM, localStorage, IndexedDB, BroadcastChannel or random values', () => {
  const { html, touched } = renderWatched(
    <SessionProvider endpoint="/api/session" sessionId="ssr-session-1">
      <Form />
    </SessionProvider>,
  )
  expect(html).toBe('<p>nobody@example.com<!-- --> <!-- -->saved</p>')
  expect(reachedFor(touched).filter(notTheClock)).toEqual([])
})

it('renders on the server without a session id, random values, the clock or storage, and asks the server nothing (what Next.js prerenders with cacheComponents): the defaults, nothing loaded', () => {
  // The app's QueryClient, made outside the render (as the Next.js recipe's getQueryClient()).
  const queryClient = new QueryClient()
  let asked = 0
  const { html, touched } = renderWatched(
    <QueryClientProvider client={queryClient}>
      <SessionProvider endpoint="/api/session" fetch={async () => (asked++, new Response('{}'))}>
        <Everything />
      </SessionProvider>
    </QueryClientProvider>,
  )
  // The session id is chosen in the browser: the server shows none.
  expect(html).toBe(
    '<p>nobody@example.com<!-- -->|<!-- -->loading<!-- -->|<!-- -->saved<!-- -->|<!-- -->0<!-- -->|<!-- -->false<!-- -->|<!-- -->0<!-- -->|<!-- -->|<!-- -->free</p>',
  )
  expect(reachedFor(touched)).toEqual([])
  expect(asked).toBe(0)
  expect(
    queryClient
      .getQueryCache()
      .getAll()
      .every((query) => query.state.fetchStatus === 'idle'),
  ).toBe(true)
})

function Page() {
  const [email] = useVariable<string>('email', 'nobody')
  const { isHydrated } = useSyncStatus()
  return (
    <p>
      {email} {isHydrated ? 'loaded' : 'loading'}
    </p>
  )
}

/** Writes in its first effect, as a page may: during hydration, before the provider shows the client's values. */
function Visit() {
  const [, setVisited] = useVariable('visited', false)
  useEffect(() => setVisited(true), [setVisited])
  return null
}

it('hydrates a part of the page that hydrates after the provider has loaded the session (a Next.js page whose code arrives after the layout’s) as the server rendered it, then shows the session; a write made meanwhile is kept', async () => {
  await mock.store.apply('late-session-1', { variables: { email: 'ada@example.com' } })
  const app = (page: ReactNode) => (
    <SessionProvider endpoint="/api/session" sessionId="late-session-1" storage={memoryLocalCopy()} debounceMs={10}>
      <Visit />
      <main>
        <Suspense fallback={null}>{page}</Suspense>
      </main>
    </SessionProvider>
  )
  const { html } = renderWatched(app(<Page />))
  let arrive = () => {}
  const LatePage = lazy(() => new Promise<{ default: typeof Page }>((resolve) => (arrive = () => resolve({ default: Page }))))
  const container = document.createElement('div')
  container.innerHTML = html
  document.body.append(container)
  await act(async () => {
    root = hydrateRoot(container, app(<LatePage />))
  })
  // The provider has hydrated: its client has read the local copy and fetched the session, and
  // the visit was written; the page's code has not arrived.
  await act(() => new Promise((resolve) => setTimeout(resolve, 100)))
  expect(mock.requests.some((request) => request.method === 'GET')).toBe(true)
  expect(container.textContent).toBe('nobody loading')
  // A mismatch would be reported through console.error, which fails the test (test/setup.ts).
  await act(async () => arrive())
  await act(() => new Promise((resolve) => setTimeout(resolve, 100)))
  expect(container.textContent).toBe('ada@example.com loaded')
  expect((await mock.store.get('late-session-1'))?.variables).toEqual({ email: 'ada@example.com', visited: true })
})
