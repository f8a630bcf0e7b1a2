// Long steps as a person meets them in the demo, in Chromium: a report that takes seconds, with
// a progress bar, a reload and a second tab mid-run, Cancel, and a server killed mid-run.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stopProcess } from '../processes.js'
import { demos, reportAcrossReloadScenario, reportCancelScenario, reportLostScenario, startDemo } from './demo-scenarios.js'
import { launchChromium } from './harness.js'

let browser: Browser
let place = ''

beforeAll(async () => {
  place = await mkdtemp(join(tmpdir(), 'ws-runs-e2e-'))
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await Promise.all([...demos].map((child) => stopProcess(child)))
  await rm(place, { recursive: true, force: true })
})

it('a report of 8 s: progress shows, a reload and a second tab mid-run follow the same run, and its result is merged once', async () => {
  const { url, child } = await startDemo({ PORT: '0', SESSION_STORE: `sqlite:${join(place, 'reload.db')}`, DEMO_REPORT_MS: '8000' })
  const context = await browser.newContext()
  await reportAcrossReloadScenario(context, url)
  await context.close()
  expect(await stopProcess(child)).toBe(0)
}, 60_000)

it('Cancel stops the report: the page says so, and nothing of it is stored', async () => {
  const { url, child } = await startDemo({ PORT: '0', SESSION_STORE: 'memory:', DEMO_REPORT_MS: '20000' })
  const page = await browser.newPage()
  await reportCancelScenario(page, url)
  await page.close()
  expect(await stopProcess(child)).toBe(0)
}, 60_000)

it('a server killed mid-run: the next server of the app ends the run lost, and the page says so', async () => {
  const env = { SESSION_STORE: `sqlite:${join(place, 'killed.db')}`, DEMO_REPORT_MS: '60000', RUN_LOST_AFTER_MS: '2000' }
  const page = await browser.newPage()
  const last = await reportLostScenario(page, (port) => startDemo({ ...env, PORT: port }))
  await page.close()
  expect(await stopProcess(last)).toBe(0)
}, 60_000)
