import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { BrowserContext, Page } from 'playwright-core'
import { expect } from 'vitest'

/** Every demo process started and not yet exited, so that a test file can stop any it left. */
export const demos = new Set<ChildProcess>()

export interface Demo {
  url: string
  child: ChildProcess
}

// By its full path, so that its command line names the checkout (.ci/run looks for leftovers so).
const DEMO_SERVER = fileURLToPath(new URL('../../demo/server.ts', import.meta.url))

/** Starts `demo/server.ts` (what `npm start` runs) and resolves with its URL. */
export function startDemo(env: Record<string, string>): Promise<Demo> {
  const child = spawn(process.execPath, ['--import', 'tsx', DEMO_SERVER], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  demos.add(child)
  child.once('exit', () => demos.delete(child))
  return new Promise((resolve, reject) => {
    let output = ''
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = /demo on (http:\/\/\S+)/.exec(output)
      if (match) resolve({ url: match[1]!, child })
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`demo exited (${code}): ${output}`)))
  })
}

/**
 * What a person does with the demo's sign-up form, whichever backend serves it: types, sees
 * "Saved", reloads and finds the value, registers (the step runs on what was saved). Returns the
 * session id the page shows.
 */
export async function signupScenario(page: Page): Promise<string> {
  await page.getByLabel('Email').fill('ada@example.com')
  await page.getByLabel('Name').fill('Ada')
  await expect.poll(() => page.getByRole('status').textContent()).toBe('Saved')
  await page.reload()
  await expect.poll(() => page.getByLabel('Email').inputValue()).toBe('ada@example.com')

  await page.getByRole('button', { name: 'Register' }).click()
  await expect.poll(() => page.getByRole('note').textContent()).toBe('Welcome, Ada! Your account is ready.')
  return (await page.locator('#sessions-heading + p code').textContent())!
}

/**
 * What a person does with the demo's cart, whichever backend serves it: adds two lines, places
 * the order (the checkout step runs on the stored cart and writes the order back), then fills a
 * field called "name" in each of two workflows, reloads, and finds both kept apart.
 */
export async function checkoutScenario(page: Page): Promise<void> {
  await page.getByLabel('Quantity').fill('3')
  await page.getByRole('button', { name: 'Add to cart' }).click()
  await page.getByLabel('Product').selectOption('coffee')
  await page.getByLabel('Quantity').fill('1')
  await page.getByRole('button', { name: 'Add to cart' }).click()
  // No waiting for the debounce: Place order flushes first, so the step sees both lines.
  await page.getByRole('button', { name: 'Place order' }).click()
  await expect.poll(() => page.getByRole('note').last().textContent()).toBe('Order #1 placed: €10.50')
  await expect.poll(() => page.getByText('The cart is empty.').count()).toBe(1)

  // Two workflows, one session: each has a field called "name", and they stay apart.
  await page.getByLabel('Name', { exact: true }).fill('Ada')
  await page.getByLabel('Deliver to').fill('Grace')
  await page.reload()
  // Both come back; the one typed last before the reload may come from the server's answer (the
  // patch sent as the page hid) a moment after the local copy shows the other: wait for each.
  await expect.poll(() => page.getByLabel('Name', { exact: true }).inputValue()).toBe('Ada')
  await expect.poll(() => page.getByLabel('Deliver to').inputValue()).toBe('Grace')
}

/** The value of the report's progress bar. */
const progressOf = async (page: Page) => Number(await page.getByLabel('Report progress').getAttribute('value'))

/** The page's cookie, for asking the demo's API as the same user. */
async function runsOf(page: Page, url: string) {
  const cookie = (await page.context().cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  const sessionId = (await page.locator('#sessions-heading + p code').textContent())!
  const answer = await fetch(`${url}/api/session/${sessionId}/runs`, { headers: { cookie } })
  return ((await answer.json()) as { runs: Array<{ status: string; step: string }> }).runs
}

/**
 * The demo's report (a long step), whichever backend serves it: Make a report, progress shows; a
 * reload and a second tab mid-run follow the same run; its result shows in both, and the server
 * has one run of it, succeeded. The report must take about 8 s.
 */
export async function reportAcrossReloadScenario(context: BrowserContext, url: string): Promise<void> {
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
}

/** Cancel, whichever backend serves the demo: the page says so, and the server's run is cancelled. */
export async function reportCancelScenario(page: Page, url: string): Promise<void> {
  await page.goto(url)
  await page.getByRole('button', { name: 'Make a report' }).click()
  await expect.poll(() => page.getByRole('button', { name: 'Cancel' }).count()).toBe(1)
  await page.getByRole('button', { name: 'Cancel' }).click()
  await expect.poll(() => page.getByText('The report was cancelled.').count()).toBe(1)
  expect(await page.getByRole('alert').count()).toBe(0)
  expect((await runsOf(page, url)).map((run) => run.status)).toEqual(['cancelled'])
}

/**
 * A server killed mid-run (SIGKILL), whichever backend: `start(port)` starts a server of the app
 * on the database (its lost bound set short); the next one, on the same port, ends the run lost
 * and the page says so. Resolves with the second server's process, to stop.
 */
export async function reportLostScenario(page: Page, start: (port: string) => Promise<Demo>): Promise<ChildProcess> {
  const first = await start('0')
  await page.goto(first.url)
  await page.getByRole('button', { name: 'Make a report' }).click()
  // Killed once the first server runs the step (a start it never received would go to the next server, and run there).
  await expect.poll(async () => (await runsOf(page, first.url)).map((run) => run.status), { timeout: 10_000 }).toEqual(['running'])
  first.child.kill('SIGKILL')
  const second = await start(new URL(first.url).port)
  await expect
    .poll(() => page.getByRole('alert').textContent(), { timeout: 20_000 })
    .toBe('Could not make the report: The server running the step stopped answering')
  expect((await runsOf(page, second.url)).map((run) => run.status)).toEqual(['lost'])
  return second.child
}
