import { request as httpRequest } from 'node:http'
import { connect, type Socket } from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { createSessionHandler, memoryStore, type RunningServer, serve, type ServeOptions } from '../../src/server/index.js'
import { newGate } from '../gate.js'

const servers: RunningServer[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()))
})

async function start(options: Partial<ServeOptions> = {}) {
  const running = await serve({ handler: createSessionHandler({ store: memoryStore(), maxBytes: 64 * 1024 }), port: 0, ...options })
  servers.push(running)
  return { ...running, port: Number(new URL(running.url).port) }
}

interface Exchange {
  /** Everything the server sent, until it closed the connection. */
  raw: string
  status: string
  /** The head's lines, lower-cased. */
  head: string
  body: string
}

/**
 * Opens a socket, lets `talk` write to it, and resolves once the server has closed it: with
 * the raw bytes, and the first response's status line, head and (de-chunked) body.
 */
function exchange(port: number, talk: (socket: Socket) => void, allowHalfOpen = false): Promise<Exchange> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1', allowHalfOpen })
    let raw = ''
    socket.setEncoding('latin1')
    socket.on('data', (text: string) => (raw += text))
    socket.on('error', () => {}) // a reset while still sending; what was read is what counts
    socket.on('close', () => resolve(parse(raw)))
    talk(socket)
  })
}

function parse(raw: string): Exchange {
  const at = raw.indexOf('\r\n\r\n')
  const head = at < 0 ? raw : raw.slice(0, at)
  let body = at < 0 ? '' : raw.slice(at + 4)
  if (/^transfer-encoding: chunked$/im.test(head)) body = dechunk(body)
  else if (/^content-length: (\d+)$/im.test(head)) body = body.slice(0, Number(/^content-length: (\d+)$/im.exec(head)![1]))
  return { raw, status: head.split('\r\n')[0]!, head: head.toLowerCase(), body }
}

function dechunk(text: string): string {
  let body = ''
  for (let at = 0; ;) {
    const end = text.indexOf('\r\n', at)
    const size = parseInt(text.slice(at, end), 16)
    if (!(size > 0)) return body
    body += text.slice(end + 2, end + 2 + size)
    at = end + 2 + size + 2
  }
}

const codeOf = (exchange: Exchange) => (JSON.parse(exchange.body) as { error: { code: string } }).error.code
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Writes a 5 MiB body in 64 KiB pieces as fast as the socket takes them, until it is closed. */
function pump(socket: Socket, piece: (chunk: Buffer) => Buffer, end = '') {
  const chunk = Buffer.alloc(64 * 1024, 'x')
  let sent = 0
  const more = () => {
    while (sent < 5 * 1024 * 1024) {
      if (socket.destroyed || socket.writableEnded) return
      sent += chunk.length
      if (!socket.write(piece(chunk))) return void socket.once('drain', more)
    }
    if (!socket.destroyed) socket.end(end)
  }
  more()
}

describe('the Node adapter', () => {
  it('hands the handler a Request that behaves like one: a router may clone it and read the body first', async () => {
    const store = memoryStore()
    const sessions = createSessionHandler({ store })
    const seen: unknown[] = []
    const { url } = await start({
      handler: async (request) => {
        seen.push(
          request instanceof Request,
          request.method,
          new URL(request.url).pathname,
          request.headers.get('x-trace'),
          await request.clone().json(),
        )
        return sessions(request)
      },
    })
    const response = await fetch(`${url}/api/session/cloned-body-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-trace': 't1' },
      body: '{"variables":{"a":1}}',
    })
    expect(response.status).toBe(200)
    expect(response instanceof Response).toBe(true)
    expect(seen).toEqual([true, 'POST', '/api/session/cloned-body-1', 't1', { variables: { a: 1 } }])
    expect(await store.getState('cloned-body-1', 'a')).toBe(1)
  })

  it('answers 413 to an oversized body before it has read it all', async () => {
    const { port } = await start()
    let sent = 0
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({
        host: '127.0.0.1',
        port,
        method: 'POST',
        path: '/api/session/big-body-1',
        headers: { 'content-type': 'application/json' },
      })
      req.on('response', (res) => {
        let body = ''
        res.on('data', (chunk: Buffer | string) => (body += chunk.toString()))
        res.on('end', () => resolve({ status: res.statusCode!, body }))
      })
      req.on('error', reject)
      // Stream 8 MiB, slowly enough that the answer can come first.
      const chunk = Buffer.alloc(64 * 1024, 'x')
      const pump = () => {
        while (sent < 8 * 1024 * 1024 && !req.destroyed) {
          sent += chunk.length
          if (!req.write(chunk)) return void req.once('drain', pump)
        }
        req.end()
      }
      pump()
    })
    expect(answer.status).toBe(413)
    expect(JSON.parse(answer.body).error.code).toBe('too_large')
    expect(sent).toBeLessThan(8 * 1024 * 1024)
  })

  it('answers 413 too_large, every time, to a 5 MiB chunked body, before closing the connection', async () => {
    const { port } = await start()
    for (let round = 0; round < 20; round++) {
      const answer = await exchange(port, (socket) => {
        socket.write(
          'POST /api/session/chunked-body-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n',
        )
        pump(socket, (chunk) => Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]), '0\r\n\r\n')
      })
      expect(answer.status, `round ${round}: ${answer.raw.slice(0, 200)}`).toBe('HTTP/1.1 413 Payload Too Large')
      expect(codeOf(answer)).toBe('too_large')
      expect(answer.head).toContain('connection: close')
    }
  })

  it.each([
    ['reads as it sends', false],
    ['reads only once it has sent the whole body', true],
  ])(
    'answers 413 too_large, 20 times in 20, to a 5 MiB Content-Length body at the default 1 MiB limit, to a client that %s',
    async (_client, readLast) => {
      const { port } = await start({ handler: createSessionHandler({ store: memoryStore() }) })
      for (let round = 0; round < 20; round++) {
        const answer = await exchange(port, (socket) => {
          // A client that reads last finds the answer only if its writes did not fail first: the
          // server must read the rest rather than reset the connection under it.
          if (readLast) socket.pause().once('finish', () => socket.resume())
          socket.write(
            `POST /api/session/declared-body-2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${5 * 1024 * 1024}\r\n\r\n`,
          )
          pump(socket, (chunk) => chunk)
        })
        expect(answer.status, `round ${round}: ${answer.raw.slice(0, 200)}`).toBe('HTTP/1.1 413 Payload Too Large')
        expect(codeOf(answer)).toBe('too_large')
        expect(answer.head).toContain('connection: close')
      }
    },
  )

  it('cuts a client that sends forever after a 413: it reads 8 MiB more at most', async () => {
    const { port } = await start({ handler: createSessionHandler({ store: memoryStore() }) })
    let sent = 0
    const startedAt = Date.now()
    const answer = await exchange(
      port,
      (socket) => {
        socket.write(
          'POST /api/session/endless-body-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n',
        )
        const chunk = Buffer.alloc(64 * 1024, 'x')
        const more = () => {
          while (!socket.destroyed) {
            sent += chunk.length
            if (!socket.write(chunk)) return void socket.once('drain', more)
          }
        }
        more()
      },
      true,
    ) // it goes on sending after the server's end
    expect(answer.status).toBe('HTTP/1.1 413 Payload Too Large')
    expect(codeOf(answer)).toBe('too_large')
    // 1 MiB before the answer, 8 MiB after, and what the two sockets' buffers hold; unbounded,
    // a loopback client sends hundreds of MiB in the 2 s the time bound would take.
    expect(sent).toBeLessThan(32 * 1024 * 1024)
    expect(Date.now() - startedAt).toBeLessThan(2000)
  })

  it('cuts a client that sends forever after a 413, slowly: 2 s after the answer at most', async () => {
    const { port } = await start()
    let answeredAt = 0
    const answer = await exchange(
      port,
      (socket) => {
        socket.once('data', () => (answeredAt = Date.now()))
        socket.write(
          'POST /api/session/endless-body-2 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n',
        )
        socket.write(Buffer.alloc(128 * 1024, 'x')) // past the 64 KiB limit
        const drip = setInterval(() => socket.write(Buffer.alloc(1024, 'x')), 20)
        socket.on('close', () => clearInterval(drip))
      },
      true,
    )
    const lingered = Date.now() - answeredAt
    expect(answer.status).toBe('HTTP/1.1 413 Payload Too Large')
    expect(codeOf(answer)).toBe('too_large')
    expect(lingered).toBeGreaterThan(1500) // read and dropped meanwhile, not reset at once
    expect(lingered).toBeLessThan(3000)
  })

  it.each([
    ['TRACE', 'TRACE /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['TRACK', 'TRACK /api/session HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n'],
    ['CONNECT', 'CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n'],
  ])('answers %s, which the Fetch API cannot represent, with 405 method_not_allowed', async (_method, request) => {
    const errors: unknown[] = []
    const { port } = await start({ onError: (error) => errors.push(error) })
    const answer = await exchange(port, (socket) => socket.write(request))
    expect(answer.status).toBe('HTTP/1.1 405 Method Not Allowed')
    expect(answer.head).toContain('content-type: application/json')
    expect(codeOf(answer)).toBe('method_not_allowed')
    expect(errors).toEqual([])
  })

  it.each([
    ['a Host no URL can hold', 'a b'],
    ['a Host that would move the path', 'evil/api/session/other-session-1?'],
  ])('answers %s with 400 bad_request', async (_what, host) => {
    const errors: unknown[] = []
    const { port } = await start({ onError: (error) => errors.push(error) })
    const answer = await exchange(port, (socket) => socket.write(`GET /api/session HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`))
    expect(answer.status).toBe('HTTP/1.1 400 Bad Request')
    expect(codeOf(answer)).toBe('bad_request')
    expect(errors).toEqual([])
  })

  it('answers a handler that throws with a JSON 500 internal_error, and tells onError', async () => {
    const errors: unknown[] = []
    const broken = new Error('the handler broke')
    const { port } = await start({
      handler: () => {
        throw broken
      },
      onError: (error) => errors.push(error),
    })
    const answer = await exchange(port, (socket) => socket.write('GET /anything HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'))
    expect(answer.status).toBe('HTTP/1.1 500 Internal Server Error')
    expect(codeOf(answer)).toBe('internal_error')
    expect(errors).toEqual([broken])
  })

  it('cuts the connection when a response body fails midway, rather than end a short 200', async () => {
    const errors: unknown[] = []
    const broken = new Error('the source broke')
    let pulls = 0
    const { port } = await start({
      handler: () =>
        new Response(
          new ReadableStream<Uint8Array>({
            async pull(controller) {
              if (pulls++ === 0) {
                controller.enqueue(new TextEncoder().encode('the first part'))
                return
              }
              await sleep(20)
              controller.error(broken)
            },
          }),
        ),
      onError: (error) => errors.push(error),
    })
    const answer = await exchange(port, (socket) => socket.write('GET /stream HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'))
    expect(answer.status).toBe('HTTP/1.1 200 OK')
    expect(answer.raw).toContain('the first part')
    expect(answer.raw).not.toContain('\r\n0\r\n\r\n') // no last chunk: the client knows it is cut short
    expect(errors).toEqual([broken])
  })

  it('closes a request whose body comes a byte at a time once requestTimeoutMs has passed', async () => {
    const errors: unknown[] = []
    const { port } = await start({
      handler: createSessionHandler({ store: memoryStore(), onError: (error) => errors.push(error) }),
      requestTimeoutMs: 1000,
    })
    const startedAt = Date.now()
    const answer = await exchange(port, (socket) => {
      socket.write(
        'POST /api/session/slow-body-1 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n',
      )
      const drip = setInterval(() => socket.write(' '), 300)
      socket.on('close', () => clearInterval(drip))
    })
    expect(Date.now() - startedAt).toBeLessThan(2000)
    expect(answer.status).toBe('HTTP/1.1 408 Request Timeout')
    // The handler was reading the body when the connection went: the request's fault, not reported as a server error.
    await new Promise((resolve) => setTimeout(resolve, 100))
    expect(errors).toEqual([])
  })

  it('closes a connection whose head comes a byte at a time once headersTimeoutMs has passed', async () => {
    const { port } = await start({ headersTimeoutMs: 1000 })
    const startedAt = Date.now()
    const answer = await exchange(port, (socket) => {
      socket.write('GET /api/session HTTP/1.1\r\n')
      const drip = setInterval(() => socket.write('x-slow: 1\r\n'), 300)
      socket.on('close', () => clearInterval(drip))
    })
    expect(Date.now() - startedAt).toBeLessThan(2000)
    expect(answer.status).toBe('HTTP/1.1 408 Request Timeout')
  })

  it('keeps a change feed open well past requestTimeoutMs, and it still delivers', async () => {
    const errors: unknown[] = []
    const { url } = await start({
      handler: createSessionHandler({ store: memoryStore(), onError: (error) => errors.push(error) }),
      requestTimeoutMs: 300,
    })
    const feed = await fetch(`${url}/api/session/long-feed-1/events`)
    expect(feed.status).toBe(200)
    const reader = feed.body!.pipeThrough(new TextDecoderStream()).getReader()
    await sleep(1500) // five times the limit, which is checked every 100 ms
    const patch = await fetch(`${url}/api/session/long-feed-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{"variables":{"n":1}}',
    })
    expect(patch.status).toBe(200)
    let text = ''
    while (!text.includes('event: snapshot')) {
      const { done, value } = await reader.read()
      if (done) break
      text += value
    }
    expect(text).toContain('"n":1')
    await reader.cancel()
    expect(errors).toEqual([])
  })

  it('answers a request that comes while it closes with 503 unavailable, Retry-After and Connection: close', async () => {
    const { gate, release } = newGate()
    const running = await serve({
      handler: async (request) => {
        if (new URL(request.url).pathname === '/slow') await gate
        return new Response('done')
      },
      port: 0,
    })
    const answer = exchange(Number(new URL(running.url).port), (socket) => {
      socket.write('GET /slow HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
      void sleep(50).then(async () => {
        const closed = running.close()
        socket.write('GET /late HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n') // same connection, behind the slow one
        await sleep(50)
        release()
        await closed
      })
    })
    const { raw } = await answer
    const late = parse(raw.slice(raw.indexOf('HTTP/1.1', 1)))
    expect(parse(raw).status).toBe('HTTP/1.1 200 OK')
    expect(late.status).toBe('HTTP/1.1 503 Service Unavailable')
    expect(late.head).toContain('retry-after: 1')
    expect(late.head).toContain('connection: close')
    expect(codeOf(late)).toBe('unavailable')
  })

  it('closes gracefully: a request under way finishes, new connections are refused, then onClose runs', async () => {
    const { gate, release } = newGate()
    const events: string[] = []
    const store = memoryStore()
    const running = await serve({
      handler: createSessionHandler({
        store,
        steps: {
          slow: async () => {
            await gate
            events.push('step finished')
            return { output: 'done', variables: { ran: true } }
          },
        },
      }),
      port: 0,
      onClose: async () => {
        events.push('onClose')
        await store.close()
      },
    })
    const underway = fetch(`${running.url}/api/session/graceful-1/run/slow`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    })
    await new Promise((resolve) => setTimeout(resolve, 50))
    const closed = running.close()
    await new Promise((resolve) => setTimeout(resolve, 50))
    await expect(fetch(`${running.url}/api/session/graceful-2`)).rejects.toThrow()
    expect(events).toEqual([]) // still waiting for the request under way
    release()
    const response = await underway
    expect(response.status).toBe(200)
    expect(await response.json()).toMatchObject({ output: 'done', session: { variables: { ran: true } } })
    await closed
    expect(events).toEqual(['step finished', 'onClose'])
  })
})
