import type { Browser, ConsoleMessage } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { bundle, launchChromium, startServer, type TestServer } from './harness.js'

// A first visit makes a new session id: the client knows no session can exist under it, so it
// asks for none (a 404 there is what browsers log as "Failed to load resource"). The console
// stays silent through a first visit, a reload before any write, typing, and a reload after it.

let browser: Browser
let server: TestServer

beforeAll(async () => {
  server = await startServer(await bundle('./app/main.tsx'))
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await server?.close()
})

it('logs nothing and fetches no session that cannot exist yet: first visit, reload, typing, reload', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  const printed: string[] = []
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error' || message.type() === 'warning') printed.push(`${message.type()}: ${message.text()}`)
  })
  page.on('pageerror', (error) => printed.push(`pageerror: ${error.message}`))
  const sessionGets = () => server.requests.filter((line) => /^GET \/api\/session\/[^/]+$/.test(line))
  const status = page.getByLabel('status')

  await page.goto(server.url) // no ?session=: the page makes and remembers an id
  await expect.poll(() => status.getAttribute('data-hydrated')).toBe('true')
  await page.reload() // nothing written yet: still no session on the server
  await expect.poll(() => status.getAttribute('data-hydrated')).toBe('true')
  await new Promise((resolve) => setTimeout(resolve, 300)) // time for a GET, were one made
  expect(sessionGets()).toEqual([])

  await page.getByLabel('email').fill('ada@example.com')
  await expect.poll(() => status.textContent()).toBe('saved')
  const sessionId = await page.evaluate(() => localStorage.getItem('workflow-session:id:/api/session'))
  expect(sessionId).toMatch(/^[A-Za-z0-9_-]{24}$/)
  expect(await server.store.getState(sessionId!, 'email')).toBe('ada@example.com')

  await page.reload() // now the session exists: this load fetches it
  await expect.poll(() => page.getByLabel('email').inputValue()).toBe('ada@example.com')
  await expect.poll(() => sessionGets()).toEqual([`GET /api/session/${sessionId}`])
  await expect.poll(() => status.textContent()).toBe('saved')

  expect(printed).toEqual([])
  await context.close()
})
