import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Page } from 'playwright-core'
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
