import type { Browser, BrowserContext } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { createSessionHandler, memoryStore, type RunningServer, serve } from '../../src/server/index.js'
import type { SessionPatch } from '../../src/shared/protocol.js'
import { newGate } from '../gate.js'
import { bundle, launchChromium } from './harness.js'

const store = memoryStore()
const sessions = createSessionHandler({ store, onError: () => {} })
/** The patches that reached the server, in order, by session path. */
const posted: { path: string; patch: SessionPatch }[] = []
/** The first patch to this path is read, then held: never answered, never applied (the connection it came on died). */
let holdFirstPatchOf: string | undefined
let hold = newGate()
let browser: Browser
let server: RunningServer
let context: BrowserContext | undefined

beforeAll(async () => {
  const script = await bundle('./app/main.tsx')
  server = await serve({
    port: 0,
    closeTimeoutMs: 2000,
    handler: async (request) => {
      const { pathname } = new URL(request.url)
      if (!pathname.startsWith('/api/session')) {
        if (pathname === '/app.js') return new Response(script, { headers: { 'content-type': 'text/javascript' } })
        return new Response('<!doctype html><html><body><div id="root"></div><script type="module" src="/app.js"></script></body></html>', {
          headers: { 'content-type': 'text/html' },
        })
      }
      if (request.method !== 'POST') return sessions(request)
      const patch = (await request.clone().json()) as SessionPatch
      posted.push({ path: pathname, patch })
      if (pathname === holdFirstPatchOf) {
        holdFirstPatchOf = undefined
        // Until the test ends, or the page gives the request up.
        await Promise.race([hold.gate, new Promise((resolve) => request.signal.addEventListener('abort', resolve))])
        return new Response(null, { status: 503 })
      }
      return sessions(request)
    },
  })
  browser = await launchChromium()
})
afterEach(async () => {
  await context?.close()
  context = undefined
  hold.release()
  hold = newGate()
  holdFirstPatchOf = undefined
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

describe('in Chromium, offline and back', () => {
  it('a patch left hanging when the network dropped is sent again as soon as it is back, and applied once', async () => {
    const sessionId = 'offline-session-1'
    const path = `/api/session/${sessionId}`
    holdFirstPatchOf = path
    context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${server.url}/?session=${sessionId}&debounce=100`)
    const status = page.getByLabel('status')
    await expect.poll(() => status.getAttribute('data-hydrated')).toBe('true')

    await page.getByLabel('email').fill('ada@example.com')
    await expect.poll(() => posted.filter((p) => p.path === path)).toHaveLength(1) // held: no answer comes
    await context.setOffline(true)
    await expect.poll(() => status.getAttribute('data-online')).toBe('false')
    const backOnline = Date.now()
    await context.setOffline(false)
    await expect
      .poll(async () => (await store.get(sessionId))?.variables, { timeout: 1000, interval: 20 })
      .toEqual({ email: 'ada@example.com' })
    expect(Date.now() - backOnline).toBeLessThan(1000)

    const [held, resent] = posted.filter((p) => p.path === path).map((p) => p.patch)
    expect(resent).toEqual(held)
    expect(resent).toMatchObject({ seq: 1, variables: { email: 'ada@example.com' } })
    expect((await store.get(sessionId))?.version).toBe(1)
    await expect.poll(() => status.textContent()).toBe('saved')

    // Had the held patch reached the store after all, late: it is not applied a second time.
    const late = await sessions(
      new Request(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(held) }),
    )
    expect(late.status).toBe(200)
    expect(await store.get(sessionId)).toMatchObject({ variables: { email: 'ada@example.com' }, version: 1 })
    expect(posted.filter((p) => p.path === path)).toHaveLength(2)
  })
})
