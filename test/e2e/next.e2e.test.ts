import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContext, ConsoleMessage, Page } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { installPacked, packedTarball, run } from '../package/packed.js'
import { launchChromium } from './harness.js'

// The recipe of docs/backends/nextjs.md as a Next.js 16 app, built with `next build` and served
// with `next start`. test/e2e/next-app is the app as create-next-app@latest makes it, less ESLint
// and Tailwind: Turbopack, cacheComponents and partialPrefetching on in next.config.ts, typescript
// ^5 as it writes it (Next 16.5 also builds with TypeScript 7). It has the SQLite store's own
// driver, better-sqlite3, and not pg; and TanStack Query 5.62.12, older than the package's
// devDependency: the oldest 5.x whose `new QueryClient()` reads no clock, which cacheComponents
// refuses during a prerender (5.59, the lowest of the peer range, fails the build there, as the
// docs say). Its node_modules come from scripts/test-env.sh; its lockfile names every platform's
// compiler of next 16.5.0, so `npm ci` accepts it anywhere. The test copies it, writes the
// recipe's files into the copy from the docs' code blocks (each fence names its file), adds
// instrumentation-client.ts to hand the app's QueryClient to the test, and installs the packed
// package.

const FIXTURE = fileURLToPath(new URL('./next-app', import.meta.url))
const DOCS = fileURLToPath(new URL('../../docs/backends/nextjs.md', import.meta.url))
const RECIPE = ['app/api/session/[[...path]]/route.ts', 'app/providers.tsx', 'app/layout.tsx', 'app/page.tsx', 'app/review/page.tsx']
/** Not part of the recipe: hands the app's QueryClient (the docs' getQueryClient()) to the test. */
const INSTRUMENTATION = `import { getQueryClient } from './app/providers'

;(window as unknown as { appQueryClient: unknown }).appQueryClient = getQueryClient()
`
const { SESSION_STORE: _ignored, ...inherited } = process.env
const ENV = { ...inherited, NEXT_TELEMETRY_DISABLED: '1' }

let app = ''
let browser: Browser | undefined
let server: ChildProcess | undefined
let serverOutput: () => string = () => ''
let buildOutput = ''
let base = ''

/** The code blocks of the docs' recipe by the file their fence names (```tsx title="app/page.tsx"). */
async function recipeFromDocs(): Promise<Map<string, string>> {
  const markdown = await readFile(DOCS, 'utf8')
  const files = new Map<string, string>()
  for (const [, path, code] of markdown.matchAll(/^```tsx? title="([^"]+)"\n([\s\S]*?)^```$/gm)) files.set(path!, code!)
  return files
}

/** Runs `next <args>` in the app, in a process group of its own so that it can be ended whole. */
function next(args: string[]): ChildProcess {
  return spawn(process.execPath, [join(app, 'node_modules/next/dist/bin/next'), ...args], {
    cwd: app,
    env: ENV,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

/** Ends a process group started by next(): SIGTERM, then SIGKILL after `graceMs`. */
async function stop(child: ChildProcess, graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const signal = (name: NodeJS.Signals) => {
    try {
      process.kill(-child.pid!, name)
    } catch {
      // Already gone.
    }
  }
  signal('SIGTERM')
  const kill = setTimeout(() => signal('SIGKILL'), graceMs)
  await exited
  clearTimeout(kill)
}

function outputOf(child: ChildProcess): () => string {
  let output = ''
  child.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()))
  return () => output
}

async function build(): Promise<void> {
  const child = next(['build'])
  const output = outputOf(child)
  const timeout = setTimeout(() => void stop(child, 0), 240_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  clearTimeout(timeout)
  buildOutput = output()
  if (code !== 0) throw new Error(`next build failed (${code}):\n${buildOutput}`)
}

async function freePort(): Promise<number> {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as { port: number }
  await new Promise((resolve) => probe.close(resolve))
  return port
}

async function start(): Promise<void> {
  const port = await freePort()
  server = next(['start', '--port', String(port), '--hostname', '127.0.0.1'])
  const output = (serverOutput = outputOf(server))
  const exited = new Promise<never>((_, reject) =>
    server!.once('exit', (code) => reject(new Error(`next start exited (${code}):\n${output()}`))),
  )
  exited.catch(() => {})
  const deadline = Date.now() + 30_000
  for (;;) {
    // The route handler answers without rendering a page: the pages' first requests are the test's.
    const ready = fetch(`http://127.0.0.1:${port}/api/session/ready-probe-0001`).then(
      (response) => response.status === 404,
      () => false,
    )
    if (await Promise.race([ready, exited])) break
    if (Date.now() > deadline) throw new Error(`next start did not answer within 30 s:\n${output()}`)
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  base = `http://127.0.0.1:${port}`
}

// Should the worker end before afterAll (a crash), the server does not outlive it.
const killServer = () => server?.pid && server.exitCode === null && process.kill(-server.pid, 'SIGKILL')
process.once('exit', killServer)

beforeAll(async () => {
  if (!existsSync(join(FIXTURE, 'node_modules/next')))
    throw new Error(`${FIXTURE} has no node_modules: run scripts/test-env.sh (npm test does)`)
  const [tarball, recipe] = await Promise.all([packedTarball(), recipeFromDocs()])
  expect([...recipe.keys()].sort()).toEqual([...RECIPE].sort())
  app = await mkdtemp(join(tmpdir(), 'ws-next-'))
  await run('cp', ['-a', `${FIXTURE}/.`, app], { cwd: app })
  for (const [path, code] of recipe) {
    await mkdir(dirname(join(app, path)), { recursive: true })
    await writeFile(join(app, path), code)
  }
  await writeFile(join(app, 'instrumentation-client.ts'), INSTRUMENTATION)
  await installPacked(app, tarball)
  await build()
  await start()
  browser = await launchChromium()
}, 360_000)

afterAll(async () => {
  await browser?.close()
  if (server) await stop(server)
  process.off('exit', killServer)
  if (app) await rm(app, { recursive: true, force: true })
}, 30_000)

/** A page whose console errors and warnings, and uncaught errors, are collected in `printed`. */
async function openPage(): Promise<{ context: BrowserContext; page: Page; printed: string[]; patched: string[] }> {
  const context = await browser!.newContext()
  const page = await context.newPage()
  const printed: string[] = []
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error' || message.type() === 'warning')
      printed.push(`${message.type()}: ${message.text()} (${message.location().url})`)
  })
  page.on('pageerror', (error) => printed.push(`pageerror: ${error.message}`))
  /** The session ids of the patches sent (POST /api/session/{id}), in order. */
  const patched: string[] = []
  page.on('request', (request) => {
    const match = /^\/api\/session\/([^/]+)$/.exec(new URL(request.url()).pathname)
    if (match && request.method() === 'POST') patched.push(match[1]!)
  })
  return { context, page, printed, patched }
}

/** The stored value of `name` in the route handler's session `sessionId`. */
async function stored(sessionId: string, name: string): Promise<unknown> {
  const response = await fetch(`${base}/api/session/${sessionId}`)
  return response.ok ? ((await response.json()) as { variables: Record<string, unknown> }).variables[name] : response.status
}

/** Once the status is no longer "Loading…", React runs the page (typing before that would be lost). */
async function loaded(page: Page): Promise<void> {
  await expect.poll(() => page.getByRole('status').textContent()).not.toBe('Loading…')
}

it('installs one @tanstack/react-query, the app’s older 5.x, and only the store’s own driver (no pg)', async () => {
  const tree = await run('npm', ['ls', '@tanstack/react-query'], { cwd: app })
  const copies = tree.split('\n').filter((line) => line.includes('@tanstack/react-query@') && !line.includes('deduped'))
  expect(copies, tree).toHaveLength(1)
  expect(copies[0]).toContain('@tanstack/react-query@5.62.12')
  expect(tree).toMatch(/workflow-session@[^\n]*\n[^\n]*@tanstack\/react-query@5\.62\.12 deduped/)
  expect(existsSync(join(app, 'node_modules/workflow-session/node_modules/@tanstack'))).toBe(false)
  expect(existsSync(join(app, 'node_modules/better-sqlite3'))).toBe(true)
  expect(existsSync(join(app, 'node_modules/pg'))).toBe(false)
})

it('next build: Turbopack with cacheComponents, no route segment config, driver or prerender error, no warning, and both pages prerendered', () => {
  expect(buildOutput).toContain('(Turbopack)')
  expect(buildOutput).toContain('Cache Components enabled')
  // Under CI=true, Next advises a build cache for the CI machine: about the machine, not the app.
  const aboutTheApp = buildOutput
    .split('\n')
    .filter((line) => !line.includes('No build cache found'))
    .join('\n')
  expect(aboutTheApp).not.toMatch(/not compatible with|Module not found|Can't resolve|unstable value|Warning|⚠/)
  // ○: prerendered as static content (the page's HTML is made at build time).
  expect(buildOutput).toMatch(/[┌├└] ○ \/\n/)
  expect(buildOutput).toMatch(/[┌├└] ○ \/review\n/)
})

it('serves each page’s server-rendered HTML: the form and the review with their defaults', async () => {
  const home = await (await fetch(`${base}/`)).text()
  expect(home).toMatch(
    /<form>.*<input name="email" value=""\/>.*<button>Register<\/button><p role="status">Loading…<\/p>.*<a href="\/review">Review<\/a><\/form>/s,
  )
  const review = await (await fetch(`${base}/review`)).text()
  expect(review).toMatch(/<main><p>Email: (<!-- -->)?none yet<\/p><a href="\/">Edit<\/a><\/main>/)
})

it('hydrates without a word on the console; typing reaches the route handler, a run answers, both are in the app’s QueryClient, a reload shows the value; no devtools in production', async () => {
  const { context, page, printed, patched } = await openPage()
  const input = page.locator('input[name="email"]')
  await page.goto(base)
  await loaded(page)
  await input.pressSequentially('ada@example.com', { delay: 10 })
  await expect.poll(() => patched.length, { timeout: 10_000 }).toBeGreaterThan(0)
  const sessionId = patched[0]!
  await expect.poll(() => stored(sessionId, 'email'), { timeout: 15_000 }).toBe('ada@example.com')

  await page.getByRole('button', { name: 'Register' }).click()
  await expect.poll(() => page.getByText('Welcome, ada@example.com').count()).toBe(1)
  expect(await stored(sessionId, 'status')).toBe('registered')
  const cache = await page.evaluate(() => {
    interface Cache<Item> {
      getAll(): Item[]
    }
    const client = (
      window as unknown as {
        appQueryClient: { getQueryCache(): Cache<{ queryKey: unknown }>; getMutationCache(): Cache<{ options: { mutationKey?: unknown } }> }
      }
    ).appQueryClient
    return {
      queries: client
        .getQueryCache()
        .getAll()
        .map((query) => query.queryKey),
      mutations: client
        .getMutationCache()
        .getAll()
        .map((mutation) => mutation.options.mutationKey),
    }
  })
  expect(cache.queries).toContainEqual(['workflow-session', '/api/session', sessionId])
  expect(cache.mutations).toContainEqual(['workflow-session', 'run', sessionId, 'register'])

  await page.reload()
  await loaded(page)
  await expect.poll(() => input.inputValue()).toBe('ada@example.com')
  expect(printed).toEqual([])
  // The recipe's <SessionDevtools /> renders nothing in this production build.
  expect(await page.locator('workflow-session-devtools').count()).toBe(0)
  await context.close()
})

it('a change typed just before following a link is kept while Next hides the page in an <Activity>, shows when it comes back, and reaches the server', async () => {
  const { context, page, printed, patched } = await openPage()
  const input = page.locator('input[name="email"]')
  // The page's timers are the test's to run: the provider's 800 ms debounce cannot fire while
  // the test goes to the other route and back.
  await page.clock.install()
  await page.goto(base)
  await loaded(page)
  await page.clock.pauseAt((await page.evaluate(() => Date.now())) + 500)
  await input.fill('grace@example.com')
  await page.getByRole('link', { name: 'Review' }).click()
  await expect.poll(() => page.getByText('Email: grace@example.com').count()).toBe(1)
  // Kept, hidden (cacheComponents keeps the route left in a hidden <Activity>), not unmounted.
  expect(await page.locator('form').count()).toBe(1)
  expect(await page.locator('form').isVisible()).toBe(false)
  await page.getByRole('link', { name: 'Edit' }).click()
  await expect.poll(() => input.isVisible()).toBe(true)
  expect(await input.inputValue()).toBe('grace@example.com')
  expect(await page.getByRole('status').textContent()).toBe('Saving…')
  expect(patched).toEqual([])
  await page.clock.resume()
  await expect.poll(() => patched.length, { timeout: 10_000 }).toBeGreaterThan(0)
  await expect.poll(() => stored(patched[0]!, 'email'), { timeout: 15_000 }).toBe('grace@example.com')
  expect(printed).toEqual([])
  await context.close()
})

it('next start printed nothing but its banner while serving every page and request above: no ExperimentalWarning, no error', () => {
  const lines = serverOutput()
    .split('\n')
    .filter((line) => line.trim() !== '' && !/^\s*(▲ Next\.js|- Local:|- Network:|✓ Ready in|✓ Running next\.config)/.test(line))
  expect(lines).toEqual([])
})
