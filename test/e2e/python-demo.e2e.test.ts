import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { buildDemoAssets, INDEX_HTML } from '../../demo/assets.js'
import { workflowDataKey } from '../../src/server/index.js'
import { ROOT, startPython, stopAllPython, stopPython } from '../python/venv.js'
import { checkoutScenario, reportAcrossReloadScenario, reportCancelScenario, reportLostScenario, signupScenario } from './demo-scenarios.js'
import { launchChromium } from './harness.js'

// The demo page (the same built assets as `npm start`) against the Python backend:
// python/examples/demo_app.py with the demo's steps ported to Python and a signed-cookie user.

let browser: Browser
let place = ''
const DEMO = join(ROOT, 'python/examples/demo_app.py')

beforeAll(async () => {
  place = await mkdtemp(join(tmpdir(), 'ws-python-demo-'))
  const assets = await buildDemoAssets()
  await Promise.all([
    writeFile(join(place, 'app.js'), assets.js),
    writeFile(join(place, 'app.css'), assets.css),
    writeFile(join(place, 'index.html'), INDEX_HTML),
  ])
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await stopAllPython()
  await rm(place, { recursive: true, force: true })
})

const startDemo = (env: Record<string, string>) =>
  startPython([DEMO], 'workflow-session demo on', { DEMO_ASSETS: place, SESSION_SECRET: 'python-demo-test-secret', PORT: '0', ...env })

it('keeps what a person typed across a reload and a restart of the Python server (SQLite), and runs the register step', async () => {
  const env = { SESSION_STORE: `sqlite:${join(place, 'sessions.db')}` }
  const first = await startDemo(env)
  const page = await browser.newPage()
  await page.goto(first.url)
  const sessionId = await signupScenario(page)

  expect(await stopPython(first.child)).toBe(0) // SIGTERM: graceful, store closed
  const again = await startDemo({ ...env, PORT: new URL(first.url).port }) // the same origin: the page keeps its IndexedDB
  const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  expect((await fetch(`${again.url}/api/session/${sessionId}`)).status).toBe(401) // no user
  const stranger = await browser.newContext() // another browser: another signed-in user
  await (await stranger.newPage()).goto(again.url)
  const strangerCookie = (await stranger.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  expect((await fetch(`${again.url}/api/session/${sessionId}`, { headers: { cookie: strangerCookie } })).status).toBe(404)
  await stranger.close()
  const stored = await (await fetch(`${again.url}/api/session/${sessionId}`, { headers: { cookie } })).json()
  const signup = (name: string) => stored.variables[workflowDataKey('signup', name)]
  expect([signup('email'), signup('name'), signup('registeredEmail')]).toEqual(['ada@example.com', 'Ada', 'ada@example.com'])
  expect(stored.variables['wf:signup:step']).toBe('registered')

  await page.reload()
  await expect.poll(() => page.getByLabel('Name').inputValue()).toBe('Ada')
  // The register run is kept by the server: after the restart and a reload the page shows its output again.
  await expect.poll(() => page.getByRole('note').textContent()).toBe('Welcome, Ada! Your account is ready.')
  await page.close()
  expect(await stopPython(again.child)).toBe(0)
})

it('runs the checkout step on the stored cart and writes the order back', async () => {
  const demo = await startDemo({ SESSION_STORE: 'memory:' })
  const page = await browser.newPage()
  await page.goto(demo.url)
  await checkoutScenario(page)
  await page.close()
  expect(await stopPython(demo.child)).toBe(0)
})

it('a report of 8 s on the Python backend: a reload and a second tab mid-run follow the same run, and its result is merged once', async () => {
  const demo = await startDemo({ SESSION_STORE: `sqlite:${join(place, 'report.db')}`, DEMO_REPORT_MS: '8000' })
  const context = await browser.newContext()
  await reportAcrossReloadScenario(context, demo.url)
  await context.close()
  expect(await stopPython(demo.child)).toBe(0)
}, 60_000)

it('Cancel stops the report on the Python backend, and nothing of it is stored', async () => {
  const demo = await startDemo({ SESSION_STORE: 'memory:', DEMO_REPORT_MS: '20000' })
  const page = await browser.newPage()
  await reportCancelScenario(page, demo.url)
  await page.close()
  expect(await stopPython(demo.child)).toBe(0)
}, 60_000)

it('a Python server killed mid-run: the next one ends the run lost, and the page says so', async () => {
  const env = { SESSION_STORE: `sqlite:${join(place, 'killed.db')}`, DEMO_REPORT_MS: '60000', RUN_LOST_AFTER_MS: '2000' }
  const page = await browser.newPage()
  const last = await reportLostScenario(page, (port) => startDemo({ ...env, PORT: port }))
  await page.close()
  expect(await stopPython(last)).toBe(0)
}, 60_000)
