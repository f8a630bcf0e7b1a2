import type { Server } from 'node:http'
import express from 'express'
import { afterEach, expect, it } from 'vitest'
import { createSessionHandler, memoryStore, toNodeListener } from '../../src/server/index.js'

// The handler inside a real Express app, mounted the way people write it.
const servers: Server[] = []
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))))
})

async function listen(app: express.Express): Promise<string> {
  const server = app.listen(0, '127.0.0.1')
  servers.push(server)
  await new Promise((resolve) => server.once('listening', resolve))
  return `http://127.0.0.1:${(server.address() as { port: number }).port}`
}

const post = (url: string, body: unknown) =>
  fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

it('serves the protocol under a mount path: Express strips it from req.url, the handler routes by the whole path', async () => {
  const app = express()
  app.use('/api/session', toNodeListener(createSessionHandler({ store: memoryStore() })))
  const url = await listen(app)
  // A session that does not exist yet is "no such session", not "no such endpoint".
  expect(await (await fetch(`${url}/api/session/express-session-1`)).json()).toEqual({
    error: { code: 'not_found', message: 'No such session' },
  })
  expect((await post(`${url}/api/session/express-session-1`, { variables: { a: 1 } })).status).toBe(200)
  expect(await (await fetch(`${url}/api/session/express-session-1`)).json()).toMatchObject({ version: 1, variables: { a: 1 } })
  expect(await (await fetch(`${url}/api/session`)).json()).toEqual({ sessions: [] })
})

it('says clearly when express.json() read the body first: a 500 the client retries, and onError names the cause', async () => {
  const errors: unknown[] = []
  const store = memoryStore()
  const app = express()
  app.use(express.json())
  app.use(
    '/api/session',
    toNodeListener(createSessionHandler({ store, onError: (error) => errors.push(error) }), (error) => errors.push(error)),
  )
  const url = await listen(app)
  const response = await post(`${url}/api/session/express-session-2`, { variables: { a: 1 } })
  expect(response.status).toBe(500)
  expect(await response.json()).toEqual({ error: { code: 'internal_error', message: 'The server could not handle the request' } })
  expect(String(errors[0])).toMatch(/read before the session handler got it \(express\.json\(\) or another body parser\?\)/)
  expect(await store.get('express-session-2')).toBeNull()
  // Reads need no body: they still work.
  expect((await fetch(`${url}/api/session/express-session-2`)).status).toBe(404)
})
