// Only types from node: at the top, so that importing `workflow-session/server` works in any
// runtime with the Fetch API; `serve()` loads node:http when it is called.
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Duplex } from 'node:stream'
import { errorResponse, SessionProtocolError } from './errors.js'
import { partsOf } from './light-response.js'
import { nodeRequest } from './node-request.js'

/**
 * Anything that answers a `Request` with a `Response` (the session handler, or your router
 * around it). A `close()` on it is called first when the server closes (to end open streams).
 */
export type FetchHandler = ((request: Request) => Response | Promise<Response>) & {
  close?: () => void | Promise<void>
  allowed?: (pathname: string) => string[]
}

/**
 * Adapts a fetch-style handler to `node:http`: `http.createServer(toNodeListener(handler))`.
 * The body is streamed to the handler, so its size limit stops reading early. Requests the
 * Fetch API cannot represent get the protocol's JSON errors: 405 for TRACE, 400 `bad_request`
 * for a malformed Host. (CONNECT and methods Node does not know never reach a listener;
 * `serve()` answers those too.)
 *
 * @example
 * http.createServer(toNodeListener(createSessionHandler({ store }))).listen(3000)
 */
export function toNodeListener(
  handler: FetchHandler,
  onError: (error: unknown) => void = console.error,
  isClosing: () => boolean = () => false,
) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    if (isClosing()) {
      // A request on a kept-alive connection while the server closes: not served, and the
      // connection goes, so the client retries elsewhere (or once the server is back).
      res.setHeader('connection', 'close')
      answer(new SessionProtocolError('unavailable', 'The server is shutting down'), req, res)
      return
    }
    let request: Request
    try {
      request = toRequest(req, res)
    } catch {
      // Node's parser lets through requests that `new Request` refuses.
      answer(refusal(req.method, handler.allowed?.((req.url ?? '/').split('?')[0]!)), req, res)
      return
    }
    void respond(handler, request, req, res).catch((error: unknown) => {
      onError(error)
      // Once the head is written, a 500 can no longer follow: cut the connection, so that the
      // client sees a broken response rather than a short 200.
      if (res.headersSent) res.destroy()
      else answer(new SessionProtocolError('internal_error', 'The server could not handle the request'), req, res)
    })
  }
}

function answer(error: SessionProtocolError, req: IncomingMessage, res: ServerResponse): void {
  send(errorResponse(error), req, res).catch(() => res.destroy())
}

async function respond(handler: FetchHandler, request: Request, req: IncomingMessage, res: ServerResponse): Promise<void> {
  await send(await handler(request), req, res)
}

/** A Host that a URL holds as it is: `evil/api/session/x?` would change the path the handler sees. */
const PLAIN_HOST = /^[A-Za-z0-9._~:[\]-]+$/

function toRequest(req: IncomingMessage, res: ServerResponse): Request {
  const host = req.headers.host || 'localhost'
  if (!PLAIN_HOST.test(host)) throw new TypeError('Malformed Host header')
  const method = req.method ?? 'GET'
  if (FORBIDDEN_METHODS.has(method.toUpperCase())) throw new TypeError(`${method} cannot be a Request`)
  // Express and Connect strip a mount path from `req.url` (`app.use('/api/session', …)`) and keep
  // the whole one in `originalUrl`: the handler routes by the whole path.
  const path = (req as IncomingMessage & { originalUrl?: string }).originalUrl ?? req.url ?? '/'
  return nodeRequest(req, res, `http://${host}${path}`)
}

/** Methods the Fetch API refuses to represent (`new Request` throws on them). */
const FORBIDDEN_METHODS = new Set(['CONNECT', 'TRACE', 'TRACK'])

function refusal(method = '', allow?: string[]): SessionProtocolError {
  if (FORBIDDEN_METHODS.has(method.toUpperCase()))
    return new SessionProtocolError('method_not_allowed', `${method} is not served here`, allow?.length ? allow : undefined)
  return new SessionProtocolError('bad_request', 'The request cannot be read: its URL or headers are malformed')
}

/** Writes `response` to `res`; throws what fails, before or after the head went out (`res.headersSent` tells which). */
async function send(response: Response, req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (!req.complete) {
    // A request whose body was not read to the end (413) cannot keep its connection. Its rest
    // is read and dropped meanwhile, so that the client can go on sending until it reads this.
    res.setHeader('connection', 'close')
    lingerAfter(req, res)
  }
  const parts = partsOf(response)
  if (parts) {
    // A light response: head and body in one write, no stream made or read.
    res.writeHead(parts.status, parts.headers as Record<string, string>)
    return void res.end(parts.body ?? undefined)
  }
  const head: Record<string, string | string[]> = {}
  response.headers.forEach((value, name) => {
    head[name] = name === 'set-cookie' ? response.headers.getSetCookie() : value
  })
  res.writeHead(response.status, head)
  if (!response.body) return void res.end()
  const reader = response.body.getReader()
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    // The client is gone: stop the stream (a change feed ends its subscription).
    if (res.destroyed) return void reader.cancel().catch(() => {})
    if (!res.write(value)) await drained(res)
  }
  res.end()
}

/** How long, and how many more body bytes, a connection is read and dropped after an early answer. */
const LINGER_MS = 2_000
const LINGER_BYTES = 8 * 1024 * 1024

/**
 * Once an answer to a request whose body is still coming is written, Node ends the connection
 * and destroys it. Closed with the client's bytes unread, a socket sends a reset, which fails
 * the client's next write, and a client still sending then never reads the answer. So the
 * connection stays open a while after the answer, its write side ended, and the rest of the
 * body is read and dropped: until the body is in (nothing is left to reset), the client closes,
 * or LINGER_MS or LINGER_BYTES have passed, whichever comes first, so that a client that sends
 * forever holds the connection no longer and makes the server read no more.
 */
function lingerAfter(req: IncomingMessage, res: ServerResponse): void {
  const socket = req.socket
  let lingering = false
  let read = 0
  let timer: ReturnType<typeof setTimeout> | undefined
  const stop = () => void socket.destroy()
  const count = (chunk: Buffer) => {
    if (lingering && (read += chunk.length) > LINGER_BYTES) stop()
  }
  // The whole body is in: close as Node would have, once the answer and the end are written.
  const ended = () => {
    if (!lingering) return
    if (socket.writableFinished) stop()
    else socket.once('finish', stop)
  }
  // Its rest is read and dropped, unless something still reads it.
  const unread = req.listenerCount('data') === 0
  req.on('data', count).once('end', ended)
  if (unread) req.resume()
  socket.once('close', () => {
    clearTimeout(timer)
    req.off('data', count).off('end', ended)
  })
  res.once('finish', () => {
    // Node's own 'finish' listener ran first: it called `socket.destroySoon()`, which ends the
    // socket now and destroys it once the end is written. Not when the body came in meanwhile.
    if (socket.destroyed || req.complete) return
    // eslint-disable-next-line @typescript-eslint/unbound-method -- the very function destroySoon() listens with
    socket.removeListener('finish', socket.destroy)
    if (!socket.writableEnded) socket.end()
    lingering = true
    timer = setTimeout(stop, LINGER_MS)
  })
}

function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      res.removeListener('drain', done).removeListener('close', done)
      resolve()
    }
    res.on('drain', done).on('close', done)
  })
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
  /**
   * Longest wait for a request's whole head; default 30 s, and never more than
   * `requestTimeoutMs` (Node refuses a longer one). The client gets 408 and the connection closes.
   */
  headersTimeoutMs?: number
  /**
   * Longest wait for a whole request, head and body; default 30 s, plenty for a JSON patch,
   * where Node's own 300 s would let a body sent a byte at a time hold a connection for five
   * minutes. The client gets 408 and the connection closes; 0 turns the limit off. Responses
   * are not limited: a change feed (`GET …/events`) was fully received when it started, so it
   * streams as long as it likes.
   */
  requestTimeoutMs?: number
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
  const { requestTimeoutMs = 30_000, headersTimeoutMs = Math.min(30_000, requestTimeoutMs || Infinity) } = options
  const { createServer, STATUS_CODES } = await import('node:http')
  let closing: Promise<void> | undefined
  // Node looks for overdue requests on this beat (its default, 30 s, would let a 1 s limit run 30 s).
  const shortestTimeout = Math.min(headersTimeoutMs || Infinity, requestTimeoutMs || Infinity)
  const server = createServer(
    {
      headersTimeout: headersTimeoutMs,
      requestTimeout: requestTimeoutMs,
      ...(shortestTimeout < Infinity && { connectionsCheckingInterval: Math.max(100, Math.ceil(shortestTimeout / 10)) }),
    },
    toNodeListener(handler, onError, () => closing !== undefined),
  )
  // CONNECT, and methods Node's parser does not know (TRACK), never reach the listener.
  const notAllowed = () => new SessionProtocolError('method_not_allowed', 'This method is not served here')
  server.on('connect', (_req: IncomingMessage, socket: Duplex) => {
    socket.on('error', () => {}) // Node has let go of this socket, and its error listener
    void answerOnSocket(socket, notAllowed(), STATUS_CODES)
  })
  server.on('clientError', (error: NodeJS.ErrnoException, socket: Duplex) => {
    if (error.code === 'HPE_INVALID_METHOD' && mayAnswer(socket)) return void answerOnSocket(socket, notAllowed(), STATUS_CODES)
    answerLikeNode(error, socket)
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(port, hostname, () => resolve())
  })
  const address = server.address() as AddressInfo
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address

  const close = () =>
    (closing ??= (async () => {
      // Open streams end, and the runs this process executes end `lost` in their store (one log
      // line each) before the store is closed.
      const handlerClosed = handler.close?.()
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
      await handlerClosed
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

/**
 * Whether a raw answer can go out on `socket` now: not when a response is already under way on
 * it (Node's own test, on its own field), as bytes written then would corrupt that response.
 */
function mayAnswer(socket: Duplex): boolean {
  return socket.writable && !(socket as { _httpMessage?: ServerResponse | null })._httpMessage?.headersSent
}

/** A protocol error written straight to a socket that no response object owns; then it closes. */
async function answerOnSocket(socket: Duplex, error: SessionProtocolError, reasons: Record<number, string | undefined>): Promise<void> {
  const response = errorResponse(error)
  const body = Buffer.from(await response.arrayBuffer())
  let head = `HTTP/1.1 ${response.status} ${reasons[response.status] ?? ''}\r\n`
  response.headers.forEach((value, name) => (head += `${name}: ${value}\r\n`))
  head += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`
  if (!socket.writable) return void socket.destroy()
  socket.end(Buffer.concat([Buffer.from(head, 'latin1'), body]), () => socket.destroy())
}

/** What Node answers to a request it cannot parse or that took too long, when nobody listens for `clientError`. */
const NODE_ANSWERS: Record<string, string> = {
  HPE_HEADER_OVERFLOW: '431 Request Header Fields Too Large',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: '413 Payload Too Large',
  ERR_HTTP_REQUEST_TIMEOUT: '408 Request Timeout',
}

function answerLikeNode(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (mayAnswer(socket)) socket.write(`HTTP/1.1 ${NODE_ANSWERS[error.code ?? ''] ?? '400 Bad Request'}\r\nConnection: close\r\n\r\n`)
  socket.destroy(error)
}
