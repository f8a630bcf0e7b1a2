// The demo: one process serving the page and the session API. `npm start` runs it.
//   PORT            default 3000
//   HOST            default 127.0.0.1 (0.0.0.0 to listen on every interface)
//   SESSION_STORE   default sqlite:.data/sessions.db (also memory:, file:DIR)
//   SESSION_TTL_MS  default: sessions never expire
import { createSessionHandler, openStore, serve } from 'workflow-session/server'
import { INDEX_HTML, buildDemoAssets } from './assets.js'
import { demoSteps } from './steps.js'

const port = Number(process.env.PORT ?? 3000)
const storeUrl = process.env.SESSION_STORE ?? 'sqlite:.data/sessions.db'
const ttlMs = process.env.SESSION_TTL_MS ? Number(process.env.SESSION_TTL_MS) : undefined

const store = await openStore(storeUrl, ttlMs === undefined ? {} : { ttlMs })
const assets = await buildDemoAssets()
const sessions = createSessionHandler({ store, steps: demoSteps })

const page = (body: string, type: string) => new Response(body, { headers: { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-cache' } })

const running = await serve({
  port,
  hostname: process.env.HOST ?? '127.0.0.1',
  shutdownSignals: ['SIGTERM', 'SIGINT'],
  onClose: () => store.close(),
  handler: (request) => {
    const { pathname } = new URL(request.url)
    if (pathname === '/api/session' || pathname.startsWith('/api/session/')) return sessions(request)
    if (request.method !== 'GET' && request.method !== 'HEAD') return new Response('Method not allowed', { status: 405 })
    if (pathname === '/app.js') return page(assets.js, 'text/javascript')
    if (pathname === '/app.css') return page(assets.css, 'text/css')
    return page(INDEX_HTML, 'text/html')
  },
})
console.log(`workflow-session demo on ${running.url.replace('127.0.0.1', 'localhost')} (store: ${storeUrl})`)
