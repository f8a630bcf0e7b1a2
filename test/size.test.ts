import { expect, it } from 'vitest'
import { APPS, BUDGETS, bundledText, entrySizes, firstChunk } from '../bench/size.js'

// A budget per entry point (brotli, dependencies external): growing past one fails the suite.
// The numbers live in bench/size-budgets.json; `npm run size` prints where each entry stands.
it('keeps every entry point within its size budget', async () => {
  const over: string[] = []
  for (const { entry, own } of await entrySizes()) {
    const budget = BUDGETS[entry]
    expect(budget, `no budget for ${entry}`).toBeGreaterThan(0)
    if (own.brotli / 1024 > budget!) over.push(`${entry}: ${(own.brotli / 1024).toFixed(2)} kB > ${budget} kB`)
  }
  expect(over).toEqual([])
}, 60_000)

it('adds none of the devtools to an app that does not import them (only the hook the client carries)', async () => {
  const app = await bundledText(APPS['full app'], [])
  expect(app).not.toMatch(/workflow-session-devtools|Made to fail on purpose|lit-html|Work offline/)
  const withDevtools = await bundledText(APPS['minimal app with devtools'], [])
  expect(withDevtools).toMatch(/workflow-session-devtools/)
  expect(withDevtools).toMatch(/Work offline/)
}, 60_000)

it('keeps the panel out of the first chunk of an app with <SessionDevtools /> whose bundler splits code', async () => {
  const first = new TextDecoder().decode(
    Buffer.concat(await firstChunk(APPS['minimal app with devtools'], ['react', 'react-dom', 'react/jsx-runtime'])),
  )
  expect(first).toMatch(/SessionProvider|useSyncExternalStore/)
  expect(first).not.toMatch(/Work offline|attachShadow/) // the panel's code, loaded when it shows
}, 60_000)
