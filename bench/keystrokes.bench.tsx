// @vitest-environment jsdom
// Scenario: a form of 50 fields, each component reading one field; 500 keystrokes across 5
// fields over 10 s (fake timers, so the counts do not depend on the machine). For each library,
// in its idiomatic form: requests, bytes sent, storage writes, renders of components that do
// not read the changed field, and the time from a setter call to the committed render.
import { QueryClient, QueryClientProvider, useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { act, cleanup, render } from '@testing-library/react'
import { memo, type ReactNode, useCallback, useState } from 'react'
import { useDebouncedCallback } from 'use-debounce'
import useLocalStorageState from 'use-local-storage-state'
import { it, vi } from 'vitest'
import { create } from 'zustand'
import { createJSONStorage, persist } from 'zustand/middleware'
import { createSessionClient, type LocalCopyStorage, memoryLocalCopy, SessionProvider, useVariable } from '../src/react/index.js'
import { createSessionHandler, memoryStore } from '../src/server/index.js'
import { writeResult } from './results.js'

const FIELDS = 50
const KEYSTROKES = 500
const TYPED_FIELDS = 5
const INTERVAL_MS = 20 // 500 × 20 ms = 10 s

interface Counters {
  posts: number
  requests: number
  bytesSent: number
  storageWrites: number
  renders: number[]
}

export interface KeystrokeRow {
  library: string
  posts: number
  requests: number
  bytesSent: number
  storageWrites: number
  nonReaderRenders: number
  p50: number
  p99: number
}

/** The form as it starts, in every variant: 50 filled-in fields. */
const INITIAL: Record<string, string> = Object.fromEntries(
  Array.from({ length: FIELDS }, (_, i) => [`field${i}`, `initial value of field ${i}`]),
)

/** A fetch that answers with the real session handler (over a store holding the initial form) and counts what is sent. */
function countingFetch(counters: Counters): typeof fetch {
  const store = memoryStore()
  for (const id of ['bench-session-1', 'bench-session-2', 'bench-session-3']) void store.apply(id, { variables: INITIAL })
  const handler = createSessionHandler({ store })
  return async (input, init) => {
    const request = new Request(input, init)
    counters.requests++
    if (request.method === 'POST') {
      counters.posts++
      counters.bytesSent += (await request.clone().arrayBuffer()).byteLength
    }
    return handler(request)
  }
}

type Setter = (value: string) => void
const setters: Setter[] = []
let current: Counters | undefined

// localStorage writes count as storage writes (use-local-storage-state keeps its state there).
// eslint-disable-next-line @typescript-eslint/unbound-method -- called below with the storage as `this`
const setItem = Storage.prototype.setItem
Storage.prototype.setItem = function (this: Storage, key: string, value: string) {
  if (current) current.storageWrites++
  setItem.call(this, key, value)
}

async function runScenario(library: string, App: (props: { counters: Counters }) => ReactNode): Promise<KeystrokeRow> {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
  const counters: Counters = { posts: 0, requests: 0, bytesSent: 0, storageWrites: 0, renders: Array<number>(FIELDS).fill(0) }
  setters.length = 0
  current = counters
  render(<App counters={counters} />)
  await act(() => vi.advanceTimersByTimeAsync(100))
  const rendersAfterMount = [...counters.renders]
  const beforeTyping = { posts: counters.posts, requests: counters.requests, bytes: counters.bytesSent, writes: counters.storageWrites }
  const latencies: number[] = []
  for (let i = 0; i < KEYSTROKES; i++) {
    const field = i % TYPED_FIELDS
    const started = performance.now()
    await act(async () => setters[field]!(`value ${i}`))
    latencies.push(performance.now() - started)
    await act(() => vi.advanceTimersByTimeAsync(INTERVAL_MS))
  }
  await act(() => vi.advanceTimersByTimeAsync(6000)) // let debounces and retries settle
  const nonReaderRenders = counters.renders
    .slice(TYPED_FIELDS)
    .reduce((sum, count, i) => sum + count - rendersAfterMount[TYPED_FIELDS + i]!, 0)
  cleanup()
  current = undefined
  vi.useRealTimers()
  latencies.sort((a, b) => a - b)
  return {
    library,
    posts: counters.posts - beforeTyping.posts,
    requests: counters.requests - beforeTyping.requests,
    bytesSent: counters.bytesSent - beforeTyping.bytes,
    storageWrites: counters.storageWrites - beforeTyping.writes,
    nonReaderRenders,
    p50: latencies[Math.floor(latencies.length * 0.5)]!,
    p99: latencies[Math.floor(latencies.length * 0.99)]!,
  }
}

const Form = ({ Field }: { Field: (props: { index: number }) => ReactNode }) => (
  <>
    {Array.from({ length: FIELDS }, (_, index) => (
      <Field key={index} index={index} />
    ))}
  </>
)

// 1. workflow-session
function Ours({ counters }: { counters: Counters }) {
  const [client] = useState(() => {
    const inner = memoryLocalCopy()
    const storage: LocalCopyStorage = { ...inner, set: (key, value) => (counters.storageWrites++, inner.set(key, value)) }
    return createSessionClient({
      endpoint: 'http://bench/api/session',
      sessionId: 'bench-session-1',
      storage,
      fetch: countingFetch(counters),
      locks: null,
    })
  })
  function Field({ index }: { index: number }) {
    counters.renders[index]!++
    const [value, setValue] = useVariable<string>(`field${index}`, '')
    setters[index] = setValue
    return <input readOnly value={value} />
  }
  return (
    <SessionProvider client={client}>
      <Form Field={Field} />
    </SessionProvider>
  )
}

// 2. zustand + persist, with an idb-keyval-style async storage (each setItem: one transaction)
function Zustand({ counters }: { counters: Counters }) {
  const [useStore] = useState(() => {
    const data = new Map<string, string>()
    const storage = {
      getItem: async (name: string) => data.get(name) ?? null,
      setItem: async (name: string, value: string) => void (counters.storageWrites++, data.set(name, value)),
      removeItem: async (name: string) => void data.delete(name),
    }
    return create<{ values: Record<string, string>; setValue: (key: string, value: string) => void }>()(
      persist(
        (set) => ({ values: { ...INITIAL }, setValue: (key, value) => set((state) => ({ values: { ...state.values, [key]: value } })) }),
        {
          name: 'form',
          storage: createJSONStorage(() => storage),
        },
      ),
    )
  })
  function Field({ index }: { index: number }) {
    counters.renders[index]!++
    const value = useStore((state) => state.values[`field${index}`] ?? '')
    const setValue = useStore((state) => state.setValue)
    setters[index] = (next) => setValue(`field${index}`, next)
    return <input readOnly value={value} />
  }
  return <Form Field={Field} />
}

// 3. use-local-storage-state, one key per field (its documented way)
function LocalStorageState({ counters }: { counters: Counters }) {
  function Field({ index }: { index: number }) {
    counters.renders[index]!++
    const [value, setValue] = useLocalStorageState(`bench-field${index}`, { defaultValue: INITIAL[`field${index}`]! })
    setters[index] = setValue
    return <input readOnly value={value} />
  }
  return <Form Field={Field} />
}

// 4. TanStack Query's optimistic update recipe: a mutation (POST) per change, invalidate on settle
function TanStackOptimistic({ counters }: { counters: Counters }) {
  const [queryClient] = useState(() => new QueryClient())
  const [fetchCounted] = useState(() => countingFetch(counters))
  const url = 'http://bench/api/session/bench-session-2'
  function Field({ index }: { index: number }) {
    counters.renders[index]!++
    const key = `field${index}`
    const client = useQueryClient()
    const { data } = useQuery({
      queryKey: ['form'],
      queryFn: async () => {
        const response = await fetchCounted(url)
        return response.ok ? ((await response.json()) as { variables: Record<string, string> }).variables : {}
      },
      select: (form) => form[key] ?? '',
    })
    const mutation = useMutation({
      mutationFn: (value: string) =>
        fetchCounted(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ variables: { [key]: value } }),
        }),
      onMutate: async (value) => {
        await client.cancelQueries({ queryKey: ['form'] })
        const previous = client.getQueryData<Record<string, string>>(['form'])
        client.setQueryData<Record<string, string>>(['form'], (old) => ({ ...old, [key]: value }))
        return { previous }
      },
      onError: (_error, _value, context) => client.setQueryData(['form'], context?.previous),
      onSettled: () => client.invalidateQueries({ queryKey: ['form'] }),
    })
    setters[index] = mutation.mutate
    return <input readOnly value={data ?? ''} />
  }
  return (
    <QueryClientProvider client={queryClient}>
      <Form Field={Field} />
    </QueryClientProvider>
  )
}

// 5. Send the whole state: useState in the form, memoized fields, a debounced POST of everything
function WholeState({ counters }: { counters: Counters }) {
  const [values, setValues] = useState<Record<string, string>>(INITIAL)
  const [fetchCounted] = useState(() => countingFetch(counters))
  const send = useDebouncedCallback(
    (all: Record<string, string>) =>
      void fetchCounted('http://bench/api/session/bench-session-3', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ variables: all }),
      }),
    800,
    { maxWait: 5000 },
  )
  const onChange = useCallback(
    (key: string, value: string) =>
      setValues((old) => {
        const next = { ...old, [key]: value }
        send(next)
        return next
      }),
    [send],
  )
  return (
    <>
      {Array.from({ length: FIELDS }, (_, index) => (
        <WholeStateField key={index} index={index} value={values[`field${index}`] ?? ''} onChange={onChange} counters={counters} />
      ))}
    </>
  )
}
const WholeStateField = memo(function WholeStateField(props: {
  index: number
  value: string
  onChange: (key: string, value: string) => void
  counters: Counters
}) {
  props.counters.renders[props.index]!++
  setters[props.index] = (value) => props.onChange(`field${props.index}`, value)
  return <input readOnly value={props.value} />
})

it('runs the keystroke scenario for each library', async () => {
  ;(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true
  const rows: KeystrokeRow[] = []
  rows.push(await runScenario('workflow-session', Ours))
  rows.push(await runScenario('zustand + persist (idb-keyval storage)', Zustand))
  rows.push(await runScenario('use-local-storage-state', LocalStorageState))
  rows.push(await runScenario('TanStack Query optimistic mutation', TanStackOptimistic))
  rows.push(await runScenario('send the whole state (debounced)', WholeState))
  await writeResult('keystrokes', rows)
}, 300_000)
