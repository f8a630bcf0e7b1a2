// A page for the hydration benchmark. ?lib=ours|ours-pending|zustand&mode=seed|measure
//   seed:    writes 1,000 variables to IndexedDB the library's own way, then says done
//   measure: mounts, and reports the time from mount to the first render that shows them
import { get, set } from 'idb-keyval'
import { useLayoutEffect, useRef } from 'react'
import { createRoot } from 'react-dom/client'
import { create } from 'zustand'
import { createJSONStorage, persist } from 'zustand/middleware'
import { createSessionClient, SessionProvider, useSessionClient, useVariable } from '../../src/react/index.js'

const COUNT = 1000
const params = new URLSearchParams(location.search)
const report = (result: unknown) => ((window as unknown as { __result: unknown }).__result = result)
let mountedAt = 0

function Shown({ value }: { value: string | undefined }) {
  const done = useRef(false)
  useLayoutEffect(() => {
    if (!done.current && value === `value ${COUNT - 1}`) {
      done.current = true
      report({ ms: performance.now() - mountedAt })
    }
  })
  return <p>{value}</p>
}

// workflow-session
function OursProbe() {
  const [value] = useVariable<string>(`field${COUNT - 1}`)
  return <Shown value={value} />
}
function OursSeed({ pending }: { pending: boolean }) {
  const client = useSessionClient()
  useLayoutEffect(() => {
    for (let i = 0; i < COUNT; i++) client.set(`field${i}`, `value ${i}`)
    void (pending ? Promise.resolve() : client.flush()).then(() => client.persist()).then(() => report({ seeded: true }))
    // Seeds once per client: `pending` is fixed for the page (a query parameter).
    // eslint-disable-next-line react-hooks/exhaustive-deps -- see above
  }, [client])
  return null
}

// zustand + persist on idb-keyval
const idbStorage = {
  getItem: async (name: string) => (await get<string>(name)) ?? null,
  setItem: (name: string, value: string) => set(name, value),
  removeItem: async () => {},
}
// Made only on zustand's pages: made on every page, its hydration (a second database opened and
// read) would run beside ours and slow our row.
const makeForm = () =>
  create<{ values: Record<string, string> }>()(
    persist(() => ({ values: {} }), { name: 'bench-form', storage: createJSONStorage(() => idbStorage) }),
  )
const useForm = params.get('lib') === 'zustand' ? makeForm() : (undefined as unknown as ReturnType<typeof makeForm>)
function ZustandProbe() {
  const value = useForm((state) => state.values[`field${COUNT - 1}`])
  return <Shown value={value} />
}

const root = createRoot(document.getElementById('root')!)
const seeding = params.get('mode') === 'seed'
if (params.get('lib') === 'zustand') {
  if (seeding) {
    useForm.setState({ values: Object.fromEntries(Array.from({ length: COUNT }, (_, i) => [`field${i}`, `value ${i}`])) })
    setTimeout(() => report({ seeded: true }), 300)
  } else {
    mountedAt = performance.now()
    root.render(<ZustandProbe />)
  }
} else {
  // lib=ours: the variables are on the server and in the local copy's base, nothing pending (the
  // common reload). lib=ours-pending: they never reached the server (every request fails), so
  // each load takes them over from the closed page's outbox. Measuring, no request is answered:
  // what shows comes from IndexedDB alone.
  const pending = params.get('lib') === 'ours-pending'
  const offline = () => Promise.reject(new TypeError('offline'))
  const client = createSessionClient({
    endpoint: '/api/session',
    sessionId: pending ? 'hydration-bench-pending' : 'hydration-bench-1',
    ...((pending || !seeding) && { fetch: offline }),
  })
  mountedAt = performance.now()
  root.render(<SessionProvider client={client}>{seeding ? <OursSeed pending={pending} /> : <OursProbe />}</SessionProvider>)
}
