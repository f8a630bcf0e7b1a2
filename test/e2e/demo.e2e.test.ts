import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { workflowDataKey } from '../../src/server/index.js'
import { stopProcess } from '../processes.js'
import { checkoutScenario, demos, signupScenario, startDemo } from './demo-scenarios.js'
import { launchChromium } from './harness.js'

let browser: Browser
let place = ''

beforeAll(async () => {
  place = await mkdtemp(join(tmpdir(), 'ws-demo-'))
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await Promise.all([...demos].map((child) => stopProcess(child)))
  await rm(place, { recursive: true, force: true })
})

it('keeps what a person typed across a reload and a server restart (SQLite)', async () => {
  const env = { PORT: '0', SESSION_STORE: `sqlite:${join(place, 'sessions.db')}` }
  const { url, child: first } = await startDemo(env)
  const page = await browser.newPage()
  await page.goto(url)
  const sessionId = await signupScenario(page)

  expect(await stopProcess(first)).toBe(0) // SIGTERM: graceful, store closed
  const port = new URL(url).port // the same origin, so the page keeps its IndexedDB and session id
  const { url: again, child: restarted } = await startDemo({ ...env, PORT: port })
  const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  expect((await fetch(`${again}/api/session/${sessionId}`)).status).toBe(401) // no user
  const stranger = await browser.newContext() // another browser: another signed-in user
  const strangerPage = await stranger.newPage()
  await strangerPage.goto(again)
  const strangerCookie = (await stranger.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  expect((await fetch(`${again}/api/session/${sessionId}`, { headers: { cookie: strangerCookie } })).status).toBe(404)
  await stranger.close()
  const stored = await (await fetch(`${again}/api/session/${sessionId}`, { headers: { cookie } })).json()
  const signup = (name: string) => stored.variables[workflowDataKey('signup', name)]
  expect([signup('email'), signup('name'), signup('registeredEmail')]).toEqual(['ada@example.com', 'Ada', 'ada@example.com'])

  await page.reload()
  await expect.poll(() => page.getByLabel('Name').inputValue()).toBe('Ada')
  // The register run is kept by the server: after the restart and a reload the page shows its output again.
  await expect.poll(() => page.getByRole('note').textContent()).toBe('Welcome, Ada! Your account is ready.')
  await page.close()
  expect(await stopProcess(restarted)).toBe(0)
})

it('runs the checkout step on the stored cart and writes the order back', async () => {
  const { url, child: demo } = await startDemo({ PORT: '0', SESSION_STORE: 'memory:' })
  const page = await browser.newPage()
  await page.goto(url)
  await checkoutScenario(page)
  await page.close()
  expect(await stopProcess(demo)).toBe(0)
})
