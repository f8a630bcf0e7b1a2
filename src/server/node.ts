// Only types from node: at the top, so that importing `workflow-session/server` works in any
// runtime with the Fetch API; `serve()` loads node:http when it is called.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

/**
 * Anything that answers a `Request` with a `Response` (the session handler, or your router
 * around it). A `close()` on it is called first when the server closes (to end open streams).
 */
export type FetchHandler = ((request: Request) => Response | Promise<Response>) & { close?: () => void }

/**
 * Adapts a fetch-style handler to `node:http`: `http.createServer(toNodeListener(handler))`.
 * The body is streamed to the handler, so its size limit stops reading early.
 *
 * @example
 * http.createServer(toNodeListener(createSessionHandler({ store }))).listen(3000)
 */
export function toNodeListener(handler: FetchHandler, onError: (error: unknown) => void = console.error, isClosing: () => boolean = () => false) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (isClosing()) {
      // A request on a kept-alive connection while the server closes: not served, and the
      // connection goes, so the client retries elsewhere (or once the server is back).
      res.writeHead(503, { 'content-type': 'application/json', connection: 'close', 'retry-after': '1' })
      res.end(JSON.stringify({ error: { code: 'internal_error', message: 'The server is shutting down' } }))
      return
    }
    void respond(handler, req, res).catch((error: unknown) => {
      onError(error)
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' })
      res.end(res.headersSent ? undefined : JSON.stringify({ error: { code: 'internal_error', message: 'Internal error' } }))
    })
  }
}

async function respond(handler: FetchHandler, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const headers = new Headers()
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue
    for (const item of Array.isArray(value) ? value : [value]) headers.append(name, item)
  }
  const method = req.method ?? 'GET'
  const abort = new AbortController()
  res.on('close', () => abort.abort())
  const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: abort.signal }
  if (method !== 'GET' && method !== 'HEAD') {
    init.body = (ReadableStream as unknown as { from(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> }).from(req)
    init.duplex = 'half'
  }
  const response = await handler(new Request(`http://${req.headers.host ?? 'localhost'}${req.url ?? '/'}`, init))

  const outHeaders: Record<string, string | string[]> = {}
  response.headers.forEach((value, name) => {
    outHeaders[name] = name === 'set-cookie' ? response.headers.getSetCookie() : value
  })
  // A request whose body was not read to the end (413) cannot keep its connection.
  if (!req.readableEnded && init.body) outHeaders.connection = 'close'
  res.writeHead(response.status, outHeaders)
  if (!response.body) {
    res.end()
    return
  }
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    if (!res.write(chunk)) await new Promise((resolve) => res.once('drain', resolve))
  }
  res.end()
}

export interface ServeOptions {
  handler: FetchHandler
  /** Default 3000; 0 picks a free port. */
  port?: number
  /** Default `127.0.0.1`; `0.0.0.0` to listen on every interface. */
  hostname?: string
  onError?: (error: unknown) => void
  /** Signals that close the server gracefully and then end the process, e.g. `['SIGTERM', 'SIGINT']`. Default: none. */
  shutdownSignals?: NodeJS.Signals[]
  /** Runs once the last request is answered (close the store here). */
  onClose?: () => void | Promise<void>
  /** After this long, `close()` cuts connections still open; default 10 s. */
  closeTimeoutMs?: number
}

export interface RunningServer {
  server: Server
  /** Where it listens, e.g. `http://127.0.0.1:3000`. */
  url: string
  /** Stops accepting connections, lets requests under way finish, then runs `onClose`. */
  close(): Promise<void>
}

/**
 * Serves a fetch-style handler with `node:http`.
 *
 * @example
 * const store = await openStore('sqlite:.data/sessions.db')
 * const { url } = await serve({
 *   handler: createSessionHandler({ store }), port: 3000,
 *   shutdownSignals: ['SIGTERM', 'SIGINT'], onClose: () => store.close(),
 * })
 */
export async function serve(options: ServeOptions): Promise<RunningServer> {
  const { handler, port = 3000, hostname = '127.0.0.1', onError, shutdownSignals = [], onClose, closeTimeoutMs = 10_000 } = options
  const { createServer } = await import('node:http')
  let closing: Promise<void> | undefined
  const server = createServer(toNodeListener(handler, onError, () => closing !== undefined))
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, hostname, () => resolve())
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address

  const close = () =>
    (closing ??= (async () => {
      handler.close?.()
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()))
      // Idle keep-alive connections would hold close() open; busy ones finish their request
      // first and are swept as soon as they fall idle.
      server.closeIdleConnections()
      const sweep = setInterval(() => server.closeIdleConnections(), 25)
      const force = setTimeout(() => server.closeAllConnections(), closeTimeoutMs)
      await stopped
      clearInterval(sweep)
      clearTimeout(force)
      for (const signal of shutdownSignals) process.off(signal, onSignal)
      await onClose?.()
    })())
  const onSignal = () => {
    void close().then(
      () => process.exit(0),
      (error: unknown) => {
        ;(onError ?? console.error)(error)
        process.exit(1)
      },
    )
  }
  for (const signal of shutdownSignals) process.once(signal, onSignal)

  return { server, url: `http://${host}:${address.port}`, close }
}
