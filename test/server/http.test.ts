import { request as httpRequest } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createSessionClient, memoryStorage } from '../../src/client/index.js'
import { createSessionHandler, memoryStore, openStore, serve, type Steps } from '../../src/server/index.js'
import { newGate } from '../gate.js'

const places: string[] = []
afterAll(() => Promise.all(places.map((place) => rm(place, { recursive: true, force: true }))))

async function startOn(url: string, steps: Steps = {}) {
  const store = await openStore(url)
  const running = await serve({ handler: createSessionHandler({ store, steps, onError: () => {} }), port: 0, onClose: () => store.close() })
  return { store, running, endpoint: `${running.url}/api/session` }
}

describe.each(['file', 'sqlite'])('the real client and the real server over loopback, %s store', (kind) => {
  it('writes, restarts the server, and reads the same session back', async () => {
    const place = await mkdtemp(join(tmpdir(), 'ws-http-'))
    places.push(place)
    const url = kind === 'file' ? `file:${join(place, 'sessions')}` : `sqlite:${join(place, 'sessions.db')}`

    const first = await startOn(url)
    const writer = createSessionClient({ endpoint: first.endpoint, sessionId: 'http-session-1', storage: memoryStorage() })
    writer.set('email', 'ada@example.com')
    writer.set('cart', [{ item: 'milk', qty: 2 }])
    await writer.flush()
    writer.delete('cart')
    writer.set('name', 'Ada')
    await writer.flush()
    await writer.stop()
    await first.running.close()

    const second = await startOn(url)
    const reader = createSessionClient({ endpoint: second.endpoint, sessionId: 'http-session-1', storage: memoryStorage() })
    const snapshot = await reader.refresh()
    expect(snapshot).toMatchObject({ variables: { email: 'ada@example.com', name: 'Ada' }, version: 2 })
    expect(reader.getSnapshot()).toEqual({ email: 'ada@example.com', name: 'Ada' })
    await reader.stop()
    await second.running.close()
  })
})

describe('the Node adapter', () => {
  it('answers 413 to an oversized body before it has read it all', async () => {
    const running = await serve({ handler: createSessionHandler({ store: memoryStore(), maxBytes: 64 * 1024 }), port: 0 })
    const { port } = new URL(running.url)
    let sent = 0
    const answer = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/api/session/big-body-1', headers: { 'content-type': 'application/json' } })
      req.on('response', (res) => {
        let body = ''
        res.on('data', (chunk) => (body += chunk))
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
    await running.close()
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
    const underway = fetch(`${running.url}/api/session/graceful-1/run/slow`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
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
