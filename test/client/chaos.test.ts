import fc from 'fast-check'
import { http, HttpResponse } from 'msw'
import { expect, it, vi } from 'vitest'
import {
  createSessionClient,
  type JsonValue,
  type LocalCopyStorage,
  memoryLocalCopy,
  type SessionClient,
  type SessionPatch,
  tabSync,
} from '../../src/client/index.js'
import { fakeLocks } from '../fake-locks.js'
import { setupMockServer } from '../msw-server.js'

const mock = setupMockServer()

type Fault = 'none' | 'drop' | '503' | '429' | 'applied-then-dropped'
type Op =
  | { kind: 'set'; tab: number; key: number; shared: boolean; value: number }
  | { kind: 'delete'; tab: number; key: number; shared: boolean }
  | { kind: 'sync' | 'hide' | 'reopen'; tab: number }
  | { kind: 'fault'; fault: Fault }

const TABS = 3
const tab = fc.integer({ min: 0, max: TABS - 1 })
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('set' as const),
      tab,
      key: fc.integer({ min: 0, max: 3 }),
      shared: fc.boolean(),
      value: fc.integer({ min: 0, max: 999 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), tab, key: fc.integer({ min: 0, max: 3 }), shared: fc.boolean() }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('sync' as const), tab }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('hide' as const), tab }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('reopen' as const), tab }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('fault' as const),
      fault: fc.constantFrom<Fault>('none', 'drop', '503', '429', 'applied-then-dropped'),
    }),
  },
)

let run = 0

it('random edits in several tabs under random faults: every tab and the server agree, and no write is lost', async () => {
  await fc.assert(
    fc.asyncProperty(fc.array(op, { minLength: 5, maxLength: 40 }), async (ops) => {
      const sessionId = `chaos-session-${++run}`
      const faults: Fault[] = []
      mock.server.use(
        http.post(`*/api/session/${sessionId}`, async ({ request }) => {
          const fault = faults.shift() ?? 'none'
          if (fault === 'drop') return HttpResponse.error()
          if (fault === '503' || fault === '429')
            return HttpResponse.json({ error: { code: 'internal_error', message: fault } }, { status: Number(fault) })
          if (fault === 'applied-then-dropped') {
            await mock.store.apply(sessionId, (await request.json()) as SessionPatch)
            return HttpResponse.error()
          }
          return undefined
        }),
      )
      // One browser profile: the tabs share IndexedDB (here a shared storage) and Web Locks.
      const storage: LocalCopyStorage = memoryLocalCopy()
      const locks = fakeLocks()
      const everOpened: SessionClient[] = []
      /** What a page does as it opens: start (cache, left-overs) and fetch the server's snapshot, as SessionProvider does. */
      const open = async () => {
        const client = createSessionClient({
          endpoint: 'http://localhost/api/session',
          sessionId,
          storage,
          locks,
          plugins: [tabSync()],
          retry: { baseMs: 1, maxMs: 4 },
          flushTimeoutMs: 10_000,
        })
        everOpened.push(client)
        await client.start()
        await client.refresh().catch(() => {}) // a failed fetch is retried by the provider's query; not needed here
        return client
      }
      const tabs: SessionClient[] = await Promise.all(Array.from({ length: TABS }, open))

      // Each tab owns its own keys (their last write must survive exactly); shared keys may end
      // with any tab's last write.
      const owned = new Map<string, JsonValue | undefined>()
      const sharedLast = new Map<string, Set<JsonValue | undefined>>()
      for (const step of ops) {
        if (step.kind === 'fault') faults.push(step.fault)
        else if (step.kind === 'set' || step.kind === 'delete') {
          const key = step.shared ? `shared${step.key}` : `tab${step.tab}-${step.key}`
          const value = step.kind === 'set' ? step.value : undefined
          if (value === undefined) tabs[step.tab]!.delete(key)
          else tabs[step.tab]!.set(key, value)
          if (step.shared) {
            const last = sharedLast.get(key) ?? new Set()
            sharedLast.set(key, last.add(value))
          } else owned.set(key, value)
        } else if (step.kind === 'sync') tabs[step.tab]!.sync()
        else if (step.kind === 'hide') tabs[step.tab]!.sendOnHide()
        else {
          // The tab is closed (its lock released) and opened again: the new page takes over.
          await tabs[step.tab]!.stop()
          tabs[step.tab] = await open()
        }
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 3))
      }

      faults.length = 0
      for (const client of tabs) await client.flush()
      const server = (await mock.store.get(sessionId))?.variables ?? {}
      for (const [key, value] of owned) expect(server[key], `owned ${key}`).toEqual(value)
      for (const [key, values] of sharedLast) expect([...values], `shared ${key}`).toContainEqual(server[key])
      await vi.waitFor(() => {
        for (const client of tabs) expect(client.getSnapshot()).toEqual(server)
      })
      await Promise.all(everOpened.map((client) => client.stop()))
    }),
    { numRuns: 40, seed: process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : undefined },
  )
}, 120_000)
