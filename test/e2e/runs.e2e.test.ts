// Long steps as a person meets them in the demo, in Chromium: a report that takes seconds, with
// a progress bar, a reload and a second tab mid-run, Cancel, and a server killed mid-run.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { stopProcess } from '../processes.js'
import { demos, startDemo } from './demo-scenarios.js'
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

const progressOf = async (page: Page) => Number(await page.getByLabel('Report progress').getAttribute('value'))

/** The page's cookie, for asking the demo's API as the same user. */
async function runsOf(page: Page, url: string) {
  const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  const sessionId = (await page.locator('#sessions-heading + p code').textContent())!
  const answer = await fetch(`${url}/api/session/${sessionId}/runs`, { headers: { cookie } })
  return ((await answer.json()) as { runs: Array<{ status: string; step: string }> }).runs
}

it('a report of 8 s: progress shows, a reload and a second tab mid-run follow the same run, and its result is merged once', async () => {
  const { url, child } = await startDemo({ PORT: '0', SESSION_STORE: `sqlite:${join(place, 'reload.db')}`, DEMO_REPORT_MS: '8000' })
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(url)
  await page.getByRole('button', { name: 'Make a report' }).click()
  await expect.poll(() => progressOf(page), { timeout: 5000 }).toBeGreaterThanOrEqual(2)
  await page.reload()
  // The run goes on, and the reloaded page follows it.
  await expect.poll(() => page.getByRole('button', { name: 'Making the report…' }).count(), { timeout: 5000 }).toBe(1)
  const second = await context.newPage()
  await second.goto(url)
  await expect.poll(() => second.getByRole('button', { name: 'Making the report…' }).count(), { timeout: 5000 }).toBe(1)
  const before = await progressOf(page)
  await expect.poll(() => progressOf(page), { timeout: 5000 }).toBeGreaterThan(before)
  await expect.poll(() => page.getByRole('note').textContent(), { timeout: 15_000 }).toMatch(/^Report ready: \d+ saved fields looked at$/)
  await expect.poll(() => second.getByRole('note').textContent(), { timeout: 15_000 }).toMatch(/^Report ready/)
  const runs = await runsOf(page, url)
  expect(runs.map((run) => [run.step, run.status])).toEqual([['report', 'succeeded']])
  await context.close()
  expect(await stopProcess(child)).toBe(0)
}, 60_000)

it('Cancel stops the report: the page says so, and nothing of it is stored', async () => {
  const { url, child } = await startDemo({ PORT: '0', SESSION_STORE: 'memory:', DEMO_REPORT_MS: '20000' })
  const page = await browser.newPage()
  await page.goto(url)
  await page.getByRole('button', { name: 'Make a report' }).click()
  await expect.poll(() => page.getByRole('button', { name: 'Cancel' }).count()).toBe(1)
  await page.getByRole('button', { name: 'Cancel' }).click()
  await expect.poll(() => page.getByText('The report was cancelled.').count()).toBe(1)
  expect(await page.getByRole('alert').count()).toBe(0)
  expect((await runsOf(page, url)).map((run) => run.status)).toEqual(['cancelled'])
  await page.close()
  expect(await stopProcess(child)).toBe(0)
}, 60_000)

it('a server killed mid-run: the next server of the app ends the run lost, and the page says so', async () => {
  const env = { SESSION_STORE: `sqlite:${join(place, 'killed.db')}`, DEMO_REPORT_MS: '60000', RUN_LOST_AFTER_MS: '2000' }
  const first = await startDemo({ ...env, PORT: '0' })
  const page = await browser.newPage()
  await page.goto(first.url)
  await page.getByRole('button', { name: 'Make a report' }).click()
  await expect.poll(() => progressOf(page), { timeout: 10_000 }).toBeGreaterThanOrEqual(0)
  first.child.kill('SIGKILL')
  const second = await startDemo({ ...env, PORT: new URL(first.url).port })
  await expect
    .poll(() => page.getByRole('alert').textContent(), { timeout: 20_000 })
    .toBe('Could not make the report: The server running the step stopped answering')
  expect((await runsOf(page, second.url)).map((run) => run.status)).toEqual(['lost'])
  await page.close()
  expect(await stopProcess(second.child)).toBe(0)
}, 60_000)
