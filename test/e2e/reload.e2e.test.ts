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

    expect(await page.getByLabel('name').inputValue()).toBe('Grace')
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
})
