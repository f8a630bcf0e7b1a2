// Hydration in Chromium: 1,000 variables in IndexedDB; the time from mount to the first render
// that shows them, per library (median of 11 page loads each, alternating between libraries). Ours twice: the common reload
// (everything confirmed, nothing pending) and a reload that takes over a closed page's changes.
import { fileURLToPath } from 'node:url'
import { createSessionHandler, memoryStore, serve } from '../src/server/index.js'
import { bundle, launchChromium } from '../test/e2e/harness.js'

export interface HydrationRow {
  library: string
  medianMs: number
  minMs: number
  maxMs: number
}

export async function measureHydration(): Promise<{ rows: HydrationRow[]; chromium: string }> {
  const script = await bundle(fileURLToPath(new URL('./hydration/page.tsx', import.meta.url)))
  const sessions = createSessionHandler({ store: memoryStore() })
  const server = await serve({
    port: 0,
    handler: (request) => {
      const path = new URL(request.url).pathname
      if (path.startsWith('/api/session')) return sessions(request)
      return path === '/app.js'
        ? new Response(script, { headers: { 'content-type': 'text/javascript' } })
        : new Response('<!doctype html><div id="root"></div><script type="module" src="/app.js"></script>', {
            headers: { 'content-type': 'text/html' },
          })
    },
  })
  const browser = await launchChromium()
  const rows: HydrationRow[] = []
  const libraries = [
    ['ours', 'workflow-session, nothing pending'],
    ['ours-pending', 'workflow-session, 1,000 pending (left by a closed page)'],
    ['zustand', 'zustand + persist (idb-keyval)'],
  ] as const
  // Each library in a browser context of its own (its own IndexedDB), seeded once; then the
  // loads alternate between the libraries, round by round, so that whatever slows the machine
  // for a while slows them alike. Two rounds first, not counted (the first reads after the
  // seeding writes are slower and scattered); then the median of 11.
  const pages = []
  for (const [lib, library] of libraries) {
    const context = await browser.newContext()
    const page = await context.newPage()
    await page.goto(`${server.url}/?lib=${lib}&mode=seed`)
    await page.waitForFunction(() => (window as unknown as { __result?: { seeded?: boolean } }).__result?.seeded === true)
    pages.push({ lib, library, context, page, times: [] as number[] })
  }
  for (let round = -2; round < 11; round++) {
    for (const { lib, page, times } of pages) {
      await page.goto(`${server.url}/?lib=${lib}&mode=measure`)
      await page.waitForFunction(() => typeof (window as unknown as { __result?: { ms?: number } }).__result?.ms === 'number', undefined, {
        timeout: 20_000,
      })
      const ms = await page.evaluate(() => (window as unknown as { __result: { ms: number } }).__result.ms)
      if (round >= 0) times.push(ms)
    }
  }
  for (const { library, context, times } of pages) {
    await context.close()
    times.sort((a, b) => a - b)
    rows.push({ library, medianMs: times[5]!, minMs: times[0]!, maxMs: times[10]! })
  }
  const chromium = browser.version()
  await browser.close()
  await server.close()
  return { rows, chromium }
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(await measureHydration())
