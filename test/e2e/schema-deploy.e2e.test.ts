import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { workflowDataKey } from '../../src/server/index.js'
import { stopProcess } from '../processes.js'
import { demos, startDemo } from './demo-scenarios.js'
import { launchChromium } from './harness.js'

// The Monday–Wednesday story in a real browser (docs/schema-versions.md): a person types
// offline on the demo's version 1, the demo is deployed at version 2 (its "Name" is now "Full
// name", demo/schema.ts), the browser comes back online, and the edit is on the server under the
// new name, once; the page says a new version is out, and the reload shows the new form.

let browser: Browser
let place = ''

beforeAll(async () => {
  place = await mkdtemp(join(tmpdir(), 'ws-schema-deploy-'))
  browser = await launchChromium()
})
afterAll(async () => {
  await browser?.close()
  await Promise.all([...demos].map((child) => stopProcess(child)))
  await rm(place, { recursive: true, force: true })
})

it('an edit typed offline before a deploy reaches the server under its new name, once, and the reloaded page shows it in the new form', async () => {
  const env = { PORT: '0', SESSION_STORE: `sqlite:${join(place, 'sessions.db')}` }
  const { url, child: monday } = await startDemo({ ...env, DEMO_SCHEMA_VERSION: '1' })
  const context = await browser.newContext()
  const page = await context.newPage()
  await page.goto(url)
  await page.getByLabel('Email').fill('ada@example.com')
  await page.getByLabel('Name').fill('Ada')
  await expect.poll(() => page.getByRole('status').textContent()).toBe('Saved')
  const sessionId = (await page.locator('#sessions-heading + p code').textContent())!
  expect(sessionId).toBeTruthy()
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  const read = async (at: string) => (await (await fetch(`${at}/api/session/${sessionId}`, { headers: { cookie } })).json()) as never
  const before = (await read(url)) as { version: number }

  await context.setOffline(true)
  await page.getByLabel('Name').fill('Ada Lovelace')
  await expect.poll(() => page.getByRole('status').textContent()).toBe('Offline — changes kept')
  expect(await stopProcess(monday)).toBe(0)

  // Tuesday's deploy on the same port (the same origin: the page keeps its device copy).
  const { url: tuesday, child } = await startDemo({ ...env, PORT: new URL(url).port, DEMO_SCHEMA_VERSION: '2' })
  await context.setOffline(false)
  await expect.poll(() => page.getByRole('status').textContent(), { timeout: 15_000 }).toContain('A new version of this page is out')
  await expect
    .poll(async () => ((await read(tuesday)) as { variables: Record<string, unknown> }).variables[workflowDataKey('signup', 'fullName')])
    .toBe('Ada Lovelace')
  const stored = (await read(tuesday)) as { version: number; schemaVersion: number; variables: Record<string, unknown> }
  // At schema version 2, the old name gone. One version for the migration and one for the edit at
  // most: the page's refetch on reconnect may read (so migrate) the session before its patch
  // arrives, or the patch comes first and is migrated with it, in one write.
  expect([stored.schemaVersion, stored.variables[workflowDataKey('signup', 'name')]]).toEqual([2, undefined])
  expect([before.version + 1, before.version + 2]).toContain(stored.version)

  await page.getByRole('button', { name: 'Reload' }).click()
  await expect.poll(() => page.getByLabel('Full name').inputValue()).toBe('Ada Lovelace')
  await expect.poll(() => page.getByRole('status').textContent()).toBe('Saved')
  expect(((await read(tuesday)) as { version: number }).version).toBe(stored.version) // nothing sent twice
  await context.close()
  expect(await stopProcess(child)).toBe(0)
}, 90_000)

it('an edit left offline by a closed tab is migrated on the device by the new page, and sent under the new name in its version, once', async () => {
  const env = { PORT: '0', SESSION_STORE: `sqlite:${join(place, 'closed-tab.db')}` }
  const { url, child: monday } = await startDemo({ ...env, DEMO_SCHEMA_VERSION: '1' })
  const context = await browser.newContext()
  const first = await context.newPage()
  await first.goto(url)
  await first.getByLabel('Name').fill('Ada')
  await expect.poll(() => first.getByRole('status').textContent()).toBe('Saved')
  const sessionId = (await first.locator('#sessions-heading + p code').textContent())!
  await context.setOffline(true)
  await first.getByLabel('Name').fill('Ada Lovelace')
  await expect.poll(() => first.getByRole('status').textContent()).toBe('Offline — changes kept')
  await first.waitForTimeout(250) // past the local copy's 100 ms coalescing: the edit is on the device (IndexedDB)
  await first.close({ runBeforeUnload: true })
  expect(await stopProcess(monday)).toBe(0)

  const { url: tuesday, child } = await startDemo({ ...env, PORT: new URL(url).port, DEMO_SCHEMA_VERSION: '2' })
  await context.setOffline(false)
  const second = await context.newPage()
  const patches: unknown[] = []
  second.on('request', (request) => {
    if (request.method() === 'POST' && new URL(request.url()).pathname === `/api/session/${sessionId}`) patches.push(request.postDataJSON())
  })
  await second.goto(tuesday)
  // Tuesday's page shows the closed tab's edit in the new form, and sends it migrated, in version 2.
  await expect.poll(() => second.getByLabel('Full name').inputValue()).toBe('Ada Lovelace')
  await expect.poll(() => second.getByRole('status').textContent()).toBe('Saved')
  const fullName = workflowDataKey('signup', 'fullName')
  expect(patches).toEqual([expect.objectContaining({ variables: { [fullName]: 'Ada Lovelace' }, schemaVersion: 2 })])
  const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ')
  const stored = (await (await fetch(`${tuesday}/api/session/${sessionId}`, { headers: { cookie } })).json()) as {
    variables: Record<string, unknown>
  }
  expect([stored.variables[fullName], stored.variables[workflowDataKey('signup', 'name')]]).toEqual(['Ada Lovelace', undefined])
  await context.close()
  expect(await stopProcess(child)).toBe(0)
}, 90_000)
