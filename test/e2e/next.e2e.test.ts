import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Browser, ConsoleMessage } from 'playwright-core'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { installPacked, packedTarball, run } from '../package/packed.js'
import { launchChromium } from './harness.js'

// The package as an App Router app uses it: SessionProvider in a server component's layout
// (app/layout.tsx), a client page with useVariable, the handler as a route handler. The packed
// tarball is installed into a copy of test/e2e/next-app (its node_modules come from
// scripts/test-env.sh), built with `next build` and served with `next start`. next is pinned to
// 15.5.28: the registry has no macOS or Windows compilers of 15.5.29, which leaves them out of
// the lockfile, and `npm ci` then rejects it.

const FIXTURE = fileURLToPath(new URL('./next-app', import.meta.url))
const ENV = {
  ...process.env,
  NEXT_TELEMETRY_DISABLED: '1',
  // Next would otherwise ask the registry to add other platforms' compilers to the lockfile.
  NEXT_IGNORE_INCORRECT_LOCKFILE: '1',
}

let app = ''
let browser: Browser | undefined
let server: ChildProcess | undefined
let base = ''

/** Runs `next <args>` in the app, in a process group of its own so that it can be ended whole. */
function next(args: string[]): ChildProcess {
  return spawn(process.execPath, [join(app, 'node_modules/next/dist/bin/next'), ...args], { cwd: app, env: ENV, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
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
  if (code !== 0) throw new Error(`next build failed (${code}):\n${output()}`)
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
  const output = outputOf(server)
  const exited = new Promise<never>((_, reject) => server!.once('exit', (code) => reject(new Error(`next start exited (${code}):\n${output()}`))))
  exited.catch(() => {})
  const deadline = Date.now() + 30_000
  for (;;) {
    const ready = fetch(`http://127.0.0.1:${port}/`).then(
      (response) => response.ok,
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
  if (!existsSync(join(FIXTURE, 'node_modules/next'))) throw new Error(`${FIXTURE} has no node_modules: run scripts/test-env.sh (npm test does)`)
  const tarball = await packedTarball()
  app = await mkdtemp(join(tmpdir(), 'ws-next-'))
  await run('cp', ['-a', `${FIXTURE}/.`, app], { cwd: app })
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

it('builds with the types under moduleResolution "node" (the tsconfig next build writes), through typesVersions', async () => {
  const tsconfig = JSON.parse(await readFile(join(app, 'tsconfig.json'), 'utf8')) as { compilerOptions: { moduleResolution: string } }
  expect(tsconfig.compilerOptions.moduleResolution).toBe('node')
})

it('SessionProvider in a server layout: hydrates without a word on the console, typing reaches the route handler, a reload shows it', async () => {
  const context = await browser!.newContext()
  const page = await context.newPage()
  const printed: string[] = []
  page.on('console', (message: ConsoleMessage) => {
    if (message.type() === 'error' || message.type() === 'warning') printed.push(`${message.type()}: ${message.text()} (${message.location().url})`)
  })
  page.on('pageerror', (error) => printed.push(`pageerror: ${error.message}`))
  const patched: string[] = []
  page.on('request', (request) => {
    const match = /^\/api\/session\/([^/]+)$/.exec(new URL(request.url()).pathname)
    if (match && request.method() === 'POST') patched.push(match[1]!)
  })
  const main = page.locator('main')
  const input = page.locator('input[name="name"]')

  await page.goto(base)
  await expect.poll(() => main.getAttribute('data-hydrated')).toBe('true')
  await input.pressSequentially('Ada Lovelace', { delay: 10 })
  await expect.poll(() => patched.length, { timeout: 10_000 }).toBeGreaterThan(0)
  const stored = async () => {
    const response = await fetch(`${base}/api/session/${patched[0]}`)
    return response.ok ? ((await response.json()) as { variables: Record<string, unknown> }).variables.name : response.status
  }
  await expect.poll(stored, { timeout: 15_000 }).toBe('Ada Lovelace')

  await page.reload()
  await expect.poll(() => main.getAttribute('data-hydrated')).toBe('true')
  await expect.poll(() => input.inputValue()).toBe('Ada Lovelace')
  expect(printed).toEqual([])
  await context.close()
})
