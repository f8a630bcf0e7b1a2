import type { Browser, BrowserContext, Page } from 'playwright-core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { bundle, launchChromium, startServer, type TestServer } from './harness.js'

let browser: Browser
let server: TestServer
let context: BrowserContext
let n = 0

beforeAll(async () => {
  server = await startServer(await bundle('./app/main.tsx'))
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})
afterEach(async () => {
  await context?.close()
  server.faults = {}
})

/** A page of `sessionId` in the shared browser context (one browser profile: shared IndexedDB). */
async function open(sessionId: string, debounce = 800): Promise<Page> {
  context ??= await browser.newContext()
  const page = await context.newPage()
  await page.goto(`${server.url}/?session=${sessionId}&debounce=${debounce}`)
  await expect.poll(() => page.getByLabel('status').getAttribute('data-hydrated')).toBe('true')
  return page
}

const stored = async (sessionId: string) => (await server.store.get(sessionId))?.variables
const newContext = async () => {
  await context?.close()
  context = await browser.newContext()
}

describe('in Chromium: nothing typed is lost', () => {
  it('closing the tab mid-debounce sends the change with keepalive', async () => {
    await newContext()
    const sessionId = `lost-session-${++n}`
    const page = await open(sessionId, 5000)
    await page.getByLabel('name').fill('Grace')
    await page.close({ runBeforeUnload: true }) // long before the 5 s debounce
    await expect.poll(() => stored(sessionId), { timeout: 10_000 }).toEqual({ name: 'Grace' })
    expect((await server.store.get(sessionId))?.version).toBe(1)
  })

  it('a change that could not be sent before the tab closed is sent by the next page, once', async () => {
    await newContext()
    const sessionId = `lost-session-${++n}`
    const page = await open(sessionId, 5000)
    server.faults.failPatches = true // the keepalive request fails too
    await page.getByLabel('email').fill('ada@example.com')
    await page.waitForTimeout(250) // past the cache's 100 ms coalescing
    await page.close({ runBeforeUnload: true })
    expect(await server.store.get(sessionId)).toBeNull()
    server.faults.failPatches = false

    const next = await open(sessionId)
    await expect.poll(() => stored(sessionId), { timeout: 10_000 }).toEqual({ email: 'ada@example.com' })
    expect(await next.getByLabel('email').inputValue()).toBe('ada@example.com')
    expect((await server.store.get(sessionId))?.version).toBe(1)
  })

  it('offline: typing keeps working, nothing is sent, and everything goes out when back online', async () => {
    await newContext()
    const sessionId = `lost-session-${++n}`
    const page = await open(sessionId, 200)
    await context.setOffline(true)
    await expect.poll(() => page.getByLabel('status').getAttribute('data-online')).toBe('false')
    const postsBefore = server.requests.filter((r) => r.startsWith('POST')).length
    await page.getByLabel('email').fill('offline@example.com')
    await page.getByLabel('name').fill('Offline')
    await page.waitForTimeout(600)
    expect(server.requests.filter((r) => r.startsWith('POST')).length).toBe(postsBefore)
    expect(await page.getByLabel('status').textContent()).toBe('unsaved')

    await context.setOffline(false)
    await expect.poll(() => stored(sessionId), { timeout: 10_000 }).toEqual({ email: 'offline@example.com', name: 'Offline' })
    await expect.poll(() => page.getByLabel('status').textContent()).toBe('saved')
  })

  it('two tabs of one session converge without reloading, in different fields and the same field', async () => {
    await newContext()
    const sessionId = `lost-session-${++n}`
    const one = await open(sessionId, 100)
    const two = await open(sessionId, 100)
    await one.getByLabel('email').fill('ada@example.com')
    await two.getByLabel('name').fill('Ada')
    await expect.poll(() => two.getByLabel('email').inputValue()).toBe('ada@example.com')
    await expect.poll(() => one.getByLabel('name').inputValue()).toBe('Ada')

    await one.getByLabel('name').fill('Ada from one')
    await two.getByLabel('name').fill('Ada from two')
    await expect.poll(async () => (await stored(sessionId))?.name).toMatch(/^Ada from (one|two)$/)
    await expect.poll(() => one.getByLabel('status').textContent()).toBe('saved')
    await expect.poll(() => two.getByLabel('status').textContent()).toBe('saved')
    const final = (await stored(sessionId))!
    await expect.poll(() => one.getByLabel('name').inputValue()).toBe(final.name)
    await expect.poll(() => two.getByLabel('name').inputValue()).toBe(final.name)
    expect(await one.getByLabel('email').inputValue()).toBe('ada@example.com')
  })
})
