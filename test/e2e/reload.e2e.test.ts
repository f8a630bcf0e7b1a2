import type { Browser, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { newGate } from '../gate.js'
import { bundle, launchChromium, startServer, type TestServer } from './harness.js'

let browser: Browser
let server: TestServer
let page: Page
let n = 0

beforeAll(async () => {
  const script = await bundle('./app/main.tsx')
  server = await startServer(script)
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})
afterEach(async () => {
  await page?.context().close()
  server.faults = {}
})

async function open(sessionId: string) {
  const context = await browser.newContext()
  page = await context.newPage()
  await page.goto(`${server.url}/?session=${sessionId}`)
  await page.getByLabel('status').waitFor()
  return page
}

const status = () => page.getByLabel('status')

describe('in Chromium, with real IndexedDB and a real server', () => {
  it('shows the values from IndexedDB after a reload, before the server answers', async () => {
    const sessionId = `reload-session-${++n}`
    await open(sessionId)
    await page.getByLabel('email').fill('ada@example.com')
    await expect.poll(() => status().textContent()).toBe('saved')
    expect((await server.store.get(sessionId))?.variables).toEqual({ email: 'ada@example.com' })

    const { gate, release } = newGate()
    server.faults.holdGets = gate
    const getsBefore = server.requests.filter((r) => r.startsWith('GET')).length
    await page.reload()
    await expect.poll(() => status().getAttribute('data-hydrated')).toBe('true')
    expect(await page.getByLabel('email').inputValue()).toBe('ada@example.com')
    expect(await status().getAttribute('data-persistent')).toBe('true')
    // The GET of the reloaded page is still being held: the value came from IndexedDB.
    expect(server.requests.filter((r) => r.startsWith('GET')).length).toBe(getsBefore + 1)
    release()
  })

  it('sends a change that was pending at reload after the reload, once', async () => {
    const sessionId = `reload-session-${++n}`
    await open(sessionId)
    server.faults.failPatches = true // nothing reaches the store before the reload
    await page.getByLabel('name').fill('Grace')
    await page.waitForTimeout(250) // within the 800 ms debounce, past the cache's 100 ms coalescing
    await page.reload()
    await page.getByLabel('status').waitFor()
    expect(await server.store.get(sessionId)).toBeNull()
    server.faults.failPatches = false

    await expect.poll(() => page.getByLabel('name').inputValue(), { timeout: 3000 }).toBe('Grace')
    await expect.poll(async () => (await server.store.get(sessionId))?.variables, { timeout: 10_000 }).toEqual({ name: 'Grace' })
    await expect.poll(() => status().textContent(), { timeout: 10_000 }).toBe('saved')
    expect((await server.store.get(sessionId))?.version).toBe(1)
  })

  it('keeps a value typed in one page for a new page of the same session', async () => {
    const sessionId = `reload-session-${++n}`
    await open(sessionId)
    await page.getByLabel('email').fill('grace@example.com')
    await expect.poll(() => status().textContent()).toBe('saved')
    await page.context().close()

    await open(sessionId) // a fresh browser context: no IndexedDB, the value comes from the server
    await expect.poll(() => page.getByLabel('email').inputValue()).toBe('grace@example.com')
  })

  it('gets only what changed: a delta answers each patch, and the refetch of a reload with nothing new is a 304 with no body', async () => {
    const sessionId = `reload-session-${++n}`
    await open(sessionId)
    // A session much larger than one change: every answer that carried it would show.
    await server.store.apply(sessionId, {
      variables: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`other${i}`, `a value the page does not show ${i}`])),
    })
    await page.reload()
    await page.getByLabel('status').waitFor()
    const answers: Array<{ method: string; status: number; body: string }> = []
    page.on('response', (response) => {
      if (!new URL(response.url()).pathname.startsWith('/api/session/')) return
      const method = response.request().method()
      void response.text().then(
        (body) => answers.push({ method, status: response.status(), body }),
        () => answers.push({ method, status: response.status(), body: '' }),
      )
    })
    await page.getByLabel('email').fill('ada@example.com')
    await expect.poll(() => status().textContent()).toBe('saved')
    await expect.poll(() => answers.filter((answer) => answer.method === 'POST').length).toBeGreaterThan(0)
    for (const post of answers.filter((answer) => answer.method === 'POST')) {
      expect(post.status).toBe(200)
      expect(JSON.parse(post.body)).toMatchObject({ base: expect.any(Number), variables: { email: 'ada@example.com' } })
      expect(post.body.length).toBeLessThan(400)
    }
    await page.waitForTimeout(300) // the confirmed snapshot is on the device (writes coalesce over 100 ms)
    answers.length = 0
    await page.reload()
    await expect.poll(() => answers.some((answer) => answer.method === 'GET')).toBe(true)
    const [refetch] = answers.filter((answer) => answer.method === 'GET')
    expect([refetch!.status, refetch!.body.length]).toEqual([304, 0])
    expect(await page.getByLabel('email').inputValue()).toBe('ada@example.com')
    await expect.poll(() => status().textContent()).toBe('saved')
  })
})
