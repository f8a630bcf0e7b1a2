import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { type Browser, chromium } from 'playwright-core'
import { createSessionHandler, memoryStore, type RunningServer, serve, type SessionStore } from '../../src/server/index.js'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../chromium.js'

/** Bundles a page entry for the browser, the way an app would ship it. */
export async function bundle(entry: string): Promise<string> {
  const result = await build({
    entryPoints: [fileURLToPath(new URL(entry, import.meta.url))],
    bundle: true,
    format: 'esm',
    write: false,
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"' },
    logLevel: 'silent',
  })
  return result.outputFiles[0]!.text
}

/** Knobs a test turns on the real server to make the network misbehave. */
interface Faults {
  /** While set, GETs of a session wait for this promise. */
  holdGets?: Promise<void>
  /** While true, patches are answered 503 without being applied. */
  failPatches?: boolean
}

export interface TestServer extends RunningServer {
  store: SessionStore
  faults: Faults
  requests: string[]
}

/** The real session handler and the page, on a loopback port. */
export async function startServer(script: string, store: SessionStore = memoryStore()): Promise<TestServer> {
  const requests: string[] = []
  // Set once the server runs; a request that comes sooner sees no faults (a const would throw).
  // eslint-disable-next-line prefer-const -- see above
  let test: TestServer | undefined
  const sessions = createSessionHandler({ store, onError: () => {} })
  const handler = async (request: Request): Promise<Response> => {
    const { pathname } = new URL(request.url)
    if (pathname.startsWith('/api/session')) {
      requests.push(`${request.method} ${pathname}`)
      const faults = test?.faults ?? {}
      if (request.method === 'GET' && faults.holdGets) await faults.holdGets
      if (request.method === 'POST' && faults.failPatches)
        return new Response('{"error":{"code":"internal_error","message":"down"}}', { status: 503 })
      return sessions(request)
    }
    if (pathname === '/app.js') return new Response(script, { headers: { 'content-type': 'text/javascript' } })
    return new Response('<!doctype html><html><body><div id="root"></div><script type="module" src="/app.js"></script></body></html>', {
      headers: { 'content-type': 'text/html' },
    })
  }
  const running = await serve({ handler, port: 0 })
  test = Object.assign(running, { store, faults: {}, requests })
  return test
}

/** Debian's Chromium (or CHROMIUM_PATH), headless. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true })
}
