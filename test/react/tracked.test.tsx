// @vitest-environment jsdom
import 'fake-indexeddb/auto'
import { act, render, screen } from '@testing-library/react'
import { startTransition, StrictMode, Suspense, useEffect, useState } from 'react'
import { beforeEach, describe, expect, it } from 'vitest'
import { type LocalCopyStorage, memoryLocalCopy, SessionProvider, type SessionState, useSessionState } from '../../src/react/index.js'
import { newGate } from '../gate.js'
import { setupMockServer } from '../msw-server.js'
import { fakeTimePerTest } from './fake-time.js'

// What a component re-renders for is what its last *committed* render read (see useTracked): a
// render React runs and then throws away must not change it.

setupMockServer()

let sessionNumber = 0
let sessionId = ''
let storage: LocalCopyStorage
let renders: Record<string, number> = {}
let commits: Record<string, number> = {}

const advance = fakeTimePerTest()

beforeEach(() => {
  sessionId = `tracked-session-${++sessionNumber}`
  storage = memoryLocalCopy()
  renders = {}
  commits = {}
})

function App({ children }: { children: React.ReactNode }) {
  return (
    <SessionProvider endpoint="/api/session" sessionId={sessionId} storage={storage}>
      {children}
    </SessionProvider>
  )
}

/** The session's methods, from a component that reads nothing (so never renders again). */
let session: SessionState
function Writer() {
  session = useSessionState()
  return null
}
const set = (key: string, value: string) => act(() => session.setVariable(key, value))

/** Shows one variable; counts its renders (committed or not) and its commits. */
function Reader({ name }: { name: string }) {
  renders[name] = (renders[name] ?? 0) + 1
  const value = useSessionState().getVariable<string>(name)
  useEffect(() => {
    commits[name] = (commits[name] ?? 0) + 1
  })
  return <output aria-label="reader">{`${name}=${value ?? ''}`}</output>
}
const shown = () => screen.getByLabelText('reader').textContent

describe('useTracked', () => {
  it('under StrictMode (each render run twice), renders again for the variable it reads and not for another', async () => {
    render(
      <StrictMode>
        <App>
          <Writer />
          <Reader name="a" />
        </App>
      </StrictMode>,
    )
    await advance(10)
    set('a', '1')
    expect(shown()).toBe('a=1')
    const before = { renders: renders.a, commits: commits.a }
    set('b', '1')
    expect({ renders: renders.a, commits: commits.a }).toEqual(before)
    set('a', '2')
    expect(shown()).toBe('a=2')
    expect(commits.a! - before.commits!).toBe(1)
  })

  it('ignores what a render React threw away read: a transition that suspends reads "b", the screen still shows "a"', async () => {
    const { gate, release } = newGate()
    let loaded = false
    void gate.then(() => (loaded = true))
    function NeedsData({ when }: { when: boolean }) {
      // eslint-disable-next-line @typescript-eslint/only-throw-error -- a thrown promise is how a component suspends
      if (when && !loaded) throw gate // suspends until release()
      return null
    }
    let show!: (name: string) => void
    function Switcher() {
      const [name, setName] = useState('a')
      show = (next) => startTransition(() => setName(next))
      return (
        <Suspense fallback={<p>loading</p>}>
          <Reader name={name} />
          <NeedsData when={name === 'b'} />
        </Suspense>
      )
    }
    render(
      <App>
        <Writer />
        <Switcher />
      </App>,
    )
    await advance(10)
    set('a', 'a1')
    set('b', 'b1')
    expect(shown()).toBe('a=a1')

    // The transition renders <Reader name="b">, which reads "b", then suspends: React keeps the
    // committed UI (no fallback inside a transition) and drops that render.
    await act(async () => show('b'))
    expect(renders.b).toBeGreaterThan(0)
    expect(commits.b).toBeUndefined()
    expect(shown()).toBe('a=a1')

    // The committed render read "a": its change shows...
    set('a', 'a2')
    expect(shown()).toBe('a=a2')
    // ...and a change of "b", which only the dropped render read, renders nothing.
    const before = { a: renders.a, b: renders.b }
    set('b', 'b2')
    expect({ a: renders.a, b: renders.b }).toEqual(before)

    // Once the data is there the transition commits, and from then on "b" is what counts.
    await act(async () => release())
    await advance(10)
    expect(shown()).toBe('b=b2')
    const committed = commits.b
    set('a', 'a3')
    expect(commits.b).toBe(committed)
    set('b', 'b3')
    expect(shown()).toBe('b=b3')
  })
})
