import type { IncomingMessage, ServerResponse } from 'node:http'
import { SessionProtocolError } from './errors.js'

/**
 * A `Request` over Node's `IncomingMessage` that makes only what the handler reads: its method,
 * URL and headers come from the message as they are, the abort signal and the body stream are
 * made on first use, and the session handler reads the body straight from the message
 * (`readNodeBody`). Anything else (`clone()`, `formData()`…) builds the real `Request` then.
 * `instanceof Request` holds.
 */

const MESSAGE = Symbol('workflow-session.incoming')
const REAL = Symbol('workflow-session.request')

interface NodeRequest extends Request {
  [MESSAGE]: {
    req: IncomingMessage
    res: ServerResponse
    url: string
    headers?: Headers
    signal?: AbortSignal
    body?: ReadableStream<Uint8Array> | null
  }
  [REAL]?: Request
}

function NodeRequest(this: NodeRequest, req: IncomingMessage, res: ServerResponse, url: string) {
  this[MESSAGE] = { req, res, url }
}
Object.setPrototypeOf(NodeRequest.prototype, Request.prototype)

const getters: Record<string, (this: NodeRequest) => unknown> = {
  method() {
    return this[MESSAGE].req.method ?? 'GET'
  },
  url() {
    return this[MESSAGE].url
  },
  headers() {
    const message = this[MESSAGE]
    if (!message.headers) {
      const headers = new Headers()
      const raw = message.req.rawHeaders
      for (let i = 0; i < raw.length; i += 2) headers.append(raw[i]!, raw[i + 1]!)
      message.headers = headers
    }
    return message.headers
  },
  signal() {
    const message = this[MESSAGE]
    if (!message.signal) {
      const abort = new AbortController()
      // Only a client that went away before the answer was written aborts.
      message.res.once('close', () => message.res.writableFinished || abort.abort())
      message.signal = abort.signal
    }
    return message.signal
  },
  body() {
    // Once the real Request exists (a clone(), say), it owns the body.
    return this[REAL] ? this[REAL].body : rawBody(this)
  },
}

/** The message's body as a web stream, made once. */
function rawBody(request: NodeRequest): ReadableStream<Uint8Array> | null {
  const message = request[MESSAGE]
  const method = message.req.method ?? 'GET'
  if (message.body === undefined) message.body = method === 'GET' || method === 'HEAD' ? null : bodyStream(message.req)
  return message.body
}
for (const [name, get] of Object.entries(getters)) Object.defineProperty(NodeRequest.prototype, name, { get })

/** Everything else a `Request` has comes from a real one, made on first use. */
const real = (request: NodeRequest): Request => {
  if (!request[REAL]) {
    const init: RequestInit & { duplex?: 'half' } = { method: request.method, headers: request.headers, signal: request.signal }
    const body = rawBody(request)
    if (body) {
      init.body = body
      init.duplex = 'half'
    }
    request[REAL] = new Request(request.url, init)
  }
  return request[REAL]
}
for (const name of [
  'bodyUsed',
  'cache',
  'credentials',
  'destination',
  'integrity',
  'keepalive',
  'mode',
  'redirect',
  'referrer',
  'referrerPolicy',
  'duplex',
] as const) {
  Object.defineProperty(NodeRequest.prototype, name, {
    get(this: NodeRequest) {
      return (real(this) as unknown as Record<string, unknown>)[name]
    },
  })
}
for (const name of ['arrayBuffer', 'blob', 'bytes', 'clone', 'formData', 'json', 'text'] as const) {
  Object.defineProperty(NodeRequest.prototype, name, {
    value(this: NodeRequest, ...args: unknown[]) {
      const request = real(this) as unknown as Record<string, (...rest: unknown[]) => unknown>
      return request[name]!.apply(request, args)
    },
  })
}

/** A `Request` for `req`, at `url` (built from its checked Host). */
export function nodeRequest(req: IncomingMessage, res: ServerResponse, url: string): Request {
  return new (NodeRequest as unknown as new (req: IncomingMessage, res: ServerResponse, url: string) => Request)(req, res, url)
}

/** How the session handler asks a request for its body as bytes, without importing this module. */
const READ_BODY = Symbol.for('workflow-session.read-body')
Object.defineProperty(NodeRequest.prototype, READ_BODY, {
  value(this: NodeRequest, maxBytes: number) {
    return readNodeBody(this, maxBytes)
  },
})

/**
 * The body of a request made by `nodeRequest`, read straight from the message, or undefined for
 * any other request. Past `maxBytes` it stops with 413 `too_large` and lets the rest be read and
 * dropped (destroying the message would reset the connection before the answer is out).
 */
function readNodeBody(request: Request, maxBytes: number): Promise<Buffer> | undefined {
  const message = (request as Partial<NodeRequest>)[MESSAGE]
  if (!message || message.body !== undefined) return undefined
  message.body = null // read once
  const { req } = message
  if (req.readableEnded) {
    // Something before the handler read the body (a body parser): a setup error, not the client's.
    return Promise.reject(
      new Error(
        'The request body was read before the session handler got it (express.json() or another body parser?): mount the session handler before any body parser, or on a path it skips',
      ),
    )
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = () => void req.off('data', data).off('end', end).off('error', fail).off('aborted', fail)
    const data = (chunk: Buffer) => {
      size += chunk.length
      if (size <= maxBytes) return void chunks.push(chunk)
      done()
      req.resume()
      reject(new SessionProtocolError('too_large', `The body is larger than ${maxBytes} bytes`))
    }
    const end = () => {
      done()
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size))
    }
    const fail = () => {
      done()
      // A body that stops midway (the client went, or the request timeout cut it) is the request's fault.
      reject(new SessionProtocolError('bad_request', 'The request body ended before it was complete'))
    }
    req.on('data', data).once('end', end).once('error', fail).once('aborted', fail)
  })
}

/**
 * The request body as a web stream, read from `req` only as the reader asks. Cancelling it (a
 * size limit) must not destroy `req`: that resets the connection before the answer (413) is out.
 * The rest is read and dropped instead, and the answer closes the connection.
 */
function bodyStream(req: IncomingMessage): ReadableStream<Uint8Array> {
  let detach: (() => void) | undefined
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (!detach) {
          const data = (chunk: Buffer) => {
            controller.enqueue(chunk)
            if (controller.desiredSize! <= 0) req.pause()
          }
          const end = () => controller.close()
          const fail = (error: Error) => controller.error(error)
          req.on('data', data).once('end', end).once('error', fail)
          detach = () => void req.off('data', data).off('end', end).off('error', fail)
        }
        req.resume()
      },
      cancel() {
        detach?.()
        req.resume()
      },
    },
    { highWaterMark: 0 },
  )
}
