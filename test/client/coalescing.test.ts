import { afterEach, beforeEach, expect, it, vi } from 'vitest'
import { createSessionClient, type LocalCopyStorage, memoryLocalCopy } from '../../src/client/index.js'
import { setupMockServer } from '../msw-server.js'

setupMockServer()
beforeEach(() => {
  vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
})
afterEach(() => {
  vi.useRealTimers()
})

it('writes IndexedDB at most once per 100 ms of typing, plus once when the page hides', async () => {
  const inner = memoryLocalCopy()
  let writes = 0
  const counting: LocalCopyStorage = { ...inner, set: (key, value) => (writes++, inner.set(key, value)) }
  const client = createSessionClient({
    endpoint: 'http://localhost/api/session',
    sessionId: 'coalescing-1',
    storage: counting,
    locks: null,
  })
  await client.start()
  // 500 keystrokes across 5 fields over 10 s; the debounce never fires (no sync), so only the cache writes.
  for (let i = 0; i < 500; i++) {
    client.set(`field${i % 5}`, `value ${i}`)
    await vi.advanceTimersByTimeAsync(20)
  }
  expect(writes).toBeLessThanOrEqual(10_000 / 100 + 1)
  expect(writes).toBeGreaterThan(0)
  // A keystroke the coalescing write has not saved yet: hiding writes it at once. (Hiding with
  // nothing new writes nothing: the copy on the device is already current.)
  client.set('field0', 'typed just before the page hid')
  const beforeHide = writes
  client.setOnline(false) // no request: only the hide's own write is counted
  client.sendOnHide()
  await vi.advanceTimersByTimeAsync(0)
  expect(writes - beforeHide).toBe(1)
  await client.stop()
})
