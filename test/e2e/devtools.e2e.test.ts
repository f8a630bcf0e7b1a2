// The session devtools in the demo, in Chromium: open the panel, type, work offline through it
// and watch the queue grow, come back and watch it drain, make the next requests fail with 503
// and watch the retry, follow a run, copy a redacted report. The screenshots of docs/debugging.md
// are taken here: UPDATE_SCREENSHOTS=1 writes them into docs/images with a fingerprint of the
// panel's code; otherwise they are taken, and the test fails when the panel's code changed since
// the pictures were written (or the page shows others), so the pictures stay true.
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, Locator } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { workflowDataKey } from '../../src/shared/workflow-keys.js'
import { stopProcess } from '../processes.js'
import { demos, startDemo } from './demo-scenarios.js'
import { launchChromium } from './harness.js'

const IMAGES = fileURLToPath(new URL('../../docs/images/', import.meta.url))
const DEBUGGING_PAGE = fileURLToPath(new URL('../../docs/debugging.md', import.meta.url))
/** What the pictures show: the panel's code, what it reads, and the demo around it. */
const PANEL_CODE = [
  ...['panel.ts', 'views.ts', 'timeline.ts', 'styles.ts', 'format.ts', 'inspector.ts'].map((name) => `src/devtools/${name}`),
  ...['App.tsx', 'SignupForm.tsx', 'LongStep.tsx', 'styles.css'].map((name) => `demo/src/${name}`),
].map((path) => fileURLToPath(new URL(`../../${path}`, import.meta.url)))
const FINGERPRINT = join(IMAGES, 'devtools.fingerprint')
/** axe-core, the accessibility checker, as a script for the page. */
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js')
/** The screenshots this test takes, each named as docs/debugging.md shows it. */
const SHOTS = [
  'devtools-variables.png',
  'devtools-offline-queue.png',
  'devtools-retry.png',
  'devtools-timeline.png',
  'devtools-storage.png',
  'devtools-runs.png',
  'devtools-dark.png',
]

let browser: Browser
let place = ''
beforeAll(async () => {
  place = await mkdtemp(join(tmpdir(), 'ws-devtools-'))
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await Promise.all([...demos].map((child) => stopProcess(child)))
  await rm(place, { recursive: true, force: true })
})

const signup = (name: string) => workflowDataKey('signup', name)

/** Where a screenshot goes: docs/images when asked to update them, else a place of this run's own. */
const shotPath = (name: string) => (process.env.UPDATE_SCREENSHOTS ? join(IMAGES, name) : join(place, name))

it('shows the sync in the demo: offline through the panel the queue grows, back online it drains, a forced 503 is retried', async () => {
  const { url, child } = await startDemo({ PORT: '0', SESSION_STORE: 'memory:', DEMO_REPORT_MS: '6000' })
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, colorScheme: 'light' })
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: url })
  const page = await context.newPage()
  const requests: string[] = []
  page.on('request', (request) => void requests.push(`${request.method()} ${new URL(request.url()).pathname}`))
  await page.goto(url)
  const sessionId = (await page.locator('#sessions-heading + p code').textContent())!
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  const stored = async () =>
    ((await (await fetch(`${url}/api/session/${sessionId}`, { headers: { cookie } })).json()) as { variables: Record<string, unknown> })
      .variables

  // The corner button opens the panel (a dialog in the devtools' own shadow root; Playwright reads through it).
  await page.getByRole('button', { name: 'Open session devtools' }).click()
  const panel = page.getByRole('dialog', { name: 'Session devtools' })
  await expect.poll(() => panel.isVisible()).toBe(true)
  const pill = panel.locator('.pill')
  const tab = (name: string) => panel.getByRole('tab', { name })
  const tabPanel = (name: string) => panel.getByRole('tabpanel', { name })

  // Typed: changed here, then confirmed at the server's version.
  await page.getByLabel('Email').fill('ada@example.com')
  const emailRow = tabPanel('Variables').locator('tr', { hasText: 'email' })
  await expect.poll(() => emailRow.textContent()).toMatch(/v\d+/)
  await expect.poll(() => pill.textContent()).toMatch(/Synced/)
  await shot(panel, 'devtools-variables.png')

  // Work offline: nothing leaves; each "Flush now" seals what was typed into a queued patch.
  await panel.getByRole('button', { name: 'Work offline' }).click()
  await expect.poll(() => panel.getByRole('button', { name: 'Work offline' }).getAttribute('aria-pressed')).toBe('true')
  await expect.poll(() => pill.textContent()).toMatch(/Offline/)
  const postsBefore = requests.filter((line) => line.startsWith('POST')).length
  await tab('Queue').click()
  const queueRows = tabPanel('Queue').locator('tbody tr')
  await page.getByLabel('Name').fill('Ada')
  await panel.getByRole('button', { name: 'Flush now' }).click()
  await expect.poll(() => queueRows.count()).toBe(1)
  await page.getByLabel('Email').fill('ada.lovelace@example.com')
  await panel.getByRole('button', { name: 'Flush now' }).click()
  await expect.poll(() => queueRows.count()).toBe(2) // the queue grew
  expect(requests.filter((line) => line.startsWith('POST')).length).toBe(postsBefore)
  await shot(panel, 'devtools-offline-queue.png')

  // Back online: the queue drains, in order, once.
  await panel.getByRole('button', { name: 'Work offline' }).click()
  await expect.poll(() => queueRows.count(), { timeout: 5000 }).toBe(0)
  await expect.poll(stored).toMatchObject({ [signup('email')]: 'ada.lovelace@example.com', [signup('name')]: 'Ada' })

  // The next two requests fail with 503: the patch is retried after a backoff and then confirmed.
  await panel.getByLabel('Requests to fail').fill('2')
  await panel.getByLabel('Requests to fail').press('Tab') // a number input says it changed as it loses the focus
  await panel.getByLabel('Status to fail with').selectOption('503')
  await panel.getByRole('button', { name: 'Fail next' }).click()
  await page.getByLabel('Name').fill('Ada L.')
  // Its last error and the next retry counting down (while a retry is on its way, there is none to count to).
  const firstRow = tabPanel('Queue').locator('tbody tr').first()
  await expect.poll(() => firstRow.textContent(), { timeout: 5000, interval: 10 }).toMatch(/unavailable \(503\).*in \d/s)
  await shot(panel, 'devtools-retry.png')
  await expect.poll(() => queueRows.count(), { timeout: 15_000 }).toBe(0)
  await expect.poll(stored).toMatchObject({ [signup('name')]: 'Ada L.' })
  await tab('Timeline').click()
  const timeline = tabPanel('Timeline')
  await expect.poll(() => timeline.textContent()).toMatch(/failed/)
  expect(await timeline.textContent()).toMatch(/offline/)
  expect(await timeline.textContent()).toMatch(/confirmed/)
  await shot(panel, 'devtools-timeline.png')

  // Storage and tabs: a second tab of the session is open; both hold their lock; the change stream is connected.
  const second = await context.newPage()
  await second.goto(url)
  await tab('Storage').click()
  const storage = tabPanel('Storage')
  await storage.getByRole('button', { name: 'Check again' }).click()
  await expect.poll(() => storage.locator('li code').count()).toBe(2)
  expect(await storage.textContent()).toMatch(/IndexedDB/)
  await expect.poll(() => storage.textContent()).toMatch(/connected/)
  await shot(panel, 'devtools-storage.png')
  await second.close()

  // A run: its status and progress as it goes.
  await page.getByRole('button', { name: 'Make a report' }).click()
  await tab('Runs').click()
  await expect.poll(() => tabPanel('Runs').textContent(), { timeout: 5000 }).toMatch(/report.*running/s)
  await expect.poll(() => tabPanel('Runs').textContent(), { timeout: 5000 }).toMatch(/"done":\s?[1-9]/)
  await shot(panel, 'devtools-runs.png')

  // A report to paste into a bug report: the state, with no value typed in it.
  await panel.getByRole('button', { name: 'Copy report' }).click()
  await expect.poll(() => panel.getByRole('status').textContent()).toBe('Copied')
  const report = await page.evaluate(() => navigator.clipboard.readText())
  expect(JSON.parse(report)).toMatchObject({ sessionId, queue: [] })
  expect(report).toContain(JSON.stringify(signup('email'))) // names are kept
  expect(report).not.toContain('ada.lovelace') // values are not
  expect(report).not.toContain('Ada L.')

  // Escape closes it and gives the focus back to the button.
  await page.keyboard.press('Escape')
  await expect.poll(() => panel.isVisible()).toBe(false)
  await context.close()
  expect(await stopProcess(child)).toBe(0)
}, 60_000)

it('passes axe’s WCAG 2.1 A and AA checks on every tab, in light and in dark', async () => {
  const { url, child } = await startDemo({ PORT: '0', SESSION_STORE: 'memory:' })
  for (const colorScheme of ['light', 'dark'] as const) {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 }, colorScheme })
    const page = await context.newPage()
    await page.goto(url)
    await page.getByLabel('Email').fill('ada@example.com')
    await page.getByRole('button', { name: 'Open session devtools' }).click()
    const panel = page.getByRole('dialog', { name: 'Session devtools' })
    await expect.poll(() => panel.isVisible()).toBe(true)
    await page.addScriptTag({ path: AXE })
    for (const name of ['Variables', 'Queue', 'Timeline', 'Storage', 'Runs']) {
      await panel.getByRole('tab', { name }).click()
      const violations = await page.evaluate(async () => {
        const { axe } = window as unknown as { axe: typeof import('axe-core') }
        const host = document.querySelector('workflow-session-devtools')!
        const result = await axe.run(host, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })
        return result.violations.map((violation) => `${violation.id}: ${violation.nodes.map((node) => node.html).join(' | ')}`)
      })
      expect(violations, `${colorScheme}, ${name}`).toEqual([])
    }
    if (colorScheme === 'dark') {
      await panel.getByRole('tab', { name: 'Variables' }).click()
      await expect.poll(() => panel.locator('.pill').textContent()).toMatch(/Synced/)
      await shot(panel, 'devtools-dark.png')
    }
    // The checker sees inside the panel's shadow root: a button with no name there is caught.
    const caught = await page.evaluate(async () => {
      const { axe } = window as unknown as { axe: typeof import('axe-core') }
      const host = document.querySelector('workflow-session-devtools')!
      const nameless = host.shadowRoot!.querySelector('[role=dialog]')!.appendChild(document.createElement('button'))
      const result = await axe.run(host, { runOnly: { type: 'rule', values: ['button-name'] } })
      nameless.remove()
      return result.violations.map((violation) => violation.id)
    })
    expect(caught).toEqual(['button-name'])
    await context.close()
  }
  expect(await stopProcess(child)).toBe(0)
}, 60_000)

it('the debugging page shows exactly the screenshots this test takes, taken of the panel’s code as it is', async () => {
  const page = await readFile(DEBUGGING_PAGE, 'utf8')
  const shown = [...page.matchAll(/\]\(images\/(devtools-[\w-]+\.png)\)/g)].map((match) => match[1])
  expect(shown.sort()).toEqual([...SHOTS].sort())
  for (const name of SHOTS) expect(existsSync(join(IMAGES, name)), name).toBe(true)
  const hash = createHash('sha256')
  for (const file of PANEL_CODE) hash.update(`${file.slice(file.lastIndexOf('/src/'))}\n`).update(await readFile(file))
  const now = hash.digest('hex')
  if (process.env.UPDATE_SCREENSHOTS) await writeFile(FINGERPRINT, `${now}\n`)
  const taken = (await readFile(FINGERPRINT, 'utf8')).trim()
  expect(
    taken,
    'the panel changed since docs/images were taken: UPDATE_SCREENSHOTS=1 npx vitest run --project e2e test/e2e/devtools.e2e.test.ts',
  ).toBe(now)
})

/** A screenshot of the panel, under the name docs/debugging.md shows it by. */
async function shot(panel: Locator, name: string): Promise<void> {
  expect(SHOTS).toContain(name)
  await panel.screenshot({ path: shotPath(name), animations: 'disabled' })
}
