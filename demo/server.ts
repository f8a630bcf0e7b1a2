// The demo: one process serving the page and the session API. `npm start` runs it.
//   PORT            default 3000
//   HOST            default 127.0.0.1 (0.0.0.0 to listen on every interface)
//   SESSION_STORE   default sqlite:.data/sessions.db (also memory:, file:DIR)
//   SESSION_TTL_MS  default: sessions never expire
//   SESSION_SECRET  signs the user cookie (default: a random secret kept in .data/cookie-secret)
//   SESSION_ENCRYPTION_KEY  base64 of 32 bytes: variables are encrypted at rest (AES-256-GCM)
//   RUN_LOST_AFTER_MS  a run whose server stopped answering is ended lost after this long (default 30 s)
//   DEMO_REPORT_MS  how long the report step takes (default 20 s)
//   DEMO_SCHEMA_VERSION  1 (default) or 2: the sign-up's "Name" becomes "Full name" (demo/schema.ts)
import { createSessionHandler, encryptedStore, openStore, serve } from 'workflow-session/server'
import { buildDemoAssets, INDEX_HTML } from './assets.js'
import { cookieAuth, loadSecret } from './auth.js'
import { demoSchema } from './schema.js'
import { demoSteps } from './steps.js'

const port = Number(process.env.PORT ?? 3000)
const storeUrl = process.env.SESSION_STORE ?? 'sqlite:.data/sessions.db'
const ttlMs = process.env.SESSION_TTL_MS ? Number(process.env.SESSION_TTL_MS) : undefined
const runLostAfterMs = process.env.RUN_LOST_AFTER_MS ? Number(process.env.RUN_LOST_AFTER_MS) : undefined
const schemaVersion = Number(process.env.DEMO_SCHEMA_VERSION ?? 1)
const migrations = demoSchema(schemaVersion)

const opened = await openStore(storeUrl, {
  ...(ttlMs !== undefined && { ttlMs }),
  ...(runLostAfterMs !== undefined && { runLostAfterMs }),
  ...(migrations && { migrations }),
}).catch((error: unknown) => {
  // One line an orchestrator's log shows, and a failed exit so that it restarts the process.
  console.error(`workflow-session demo: ${(error as Error).message}`)
  process.exit(1)
})
const encryptionKey = process.env.SESSION_ENCRYPTION_KEY
const store = encryptionKey ? encryptedStore(opened, { keys: { k1: encryptionKey }, currentKeyId: 'k1' }) : opened
const assets = await buildDemoAssets(schemaVersion)
const auth = cookieAuth(await loadSecret())
const sessions = createSessionHandler({ store, steps: demoSteps, authorize: auth.userOf, requireUser: true })

const page = (body: string, type: string, cookie?: string | null) => {
  const headers = new Headers({ 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-cache' })
  if (cookie) headers.set('set-cookie', cookie)
  return new Response(body, { headers })
}

const running = await serve({
  port,
  hostname: process.env.HOST ?? '127.0.0.1',
  shutdownSignals: ['SIGTERM', 'SIGINT'],
  onClose: () => store.close(),
  handler: Object.assign(
    async (request: Request) => {
      const { pathname } = new URL(request.url)
      if (pathname === '/api/session' || pathname.startsWith('/api/session/')) return sessions(request)
      if (request.method !== 'GET' && request.method !== 'HEAD') return new Response('Method not allowed', { status: 405 })
      if (pathname === '/app.js') return page(assets.js, 'text/javascript')
      if (pathname === '/app.css') return page(assets.css, 'text/css')
      // The page signs a new visitor in, so that the API calls that follow carry a user.
      return page(INDEX_HTML, 'text/html', await auth.signIn(request))
    },
    { close: sessions.close },
  ),
})
console.log(
  `workflow-session demo on ${running.url.replace('127.0.0.1', 'localhost')} (store: ${storeUrl}, schema version ${schemaVersion})`,
)
