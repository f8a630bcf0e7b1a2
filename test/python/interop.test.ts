import { join } from 'node:path'
import { expect, it } from 'vitest'
import { postgresStore, type SessionSnapshot, sqliteStore } from '../../src/server/index.js'
import { sharedScratch } from './shared-scratch.js'
import { startPython } from './venv.js'

// Python and Node servers on one database: the same tables, the same seq bookkeeping, the same
// change channel. Each side writes, the other reads and hears it.

const scratch = sharedScratch('ws-python-interop-')

const sessionId = () => `interop-${Math.random().toString(36).slice(2, 12)}`
const json = (body: unknown) => ({ method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })

it('shares one SQLite file: each side reads what the other wrote, and a seq applied by one is not applied again by the other', async () => {
  const file = join(scratch.place, 'shared.db')
  const node = await sqliteStore(file)
  const id = sessionId()
  await node.apply(id, { variables: { a: 1, gone: true, text: 'é😀' }, clientId: 'node-tab', seq: 1 })
  await node.apply(id, { deleted: ['gone'] })
  const python = await startPython(['-m', 'workflow_session.serve', '--store', `sqlite:${file}`, '--port', '0'], 'workflow-session on')

  const read = (await (await fetch(`${python.url}/${id}`)).json()) as SessionSnapshot
  expect([read.variables, read.version]).toEqual([{ a: 1, text: 'é😀' }, 2])
  const replay = (await (
    await fetch(`${python.url}/${id}`, json({ variables: { a: 'again' }, clientId: 'node-tab', seq: 1 }))
  ).json()) as SessionSnapshot
  expect(replay.version).toBe(2)
  await fetch(`${python.url}/${id}`, json({ variables: { b: 2, 'wf:signup:v:email': 'a@b.c' }, deleted: ['a'] }))

  const back = await node.get(id)
  expect(back?.version).toBe(3)
  expect(back?.variables).toEqual({ text: 'é😀', b: 2, 'wf:signup:v:email': 'a@b.c', 'wf:signup:at': back?.updatedAt })
  await node.apply(id, { variables: { c: 3 } })
  expect(((await (await fetch(`${python.url}/${id}`)).json()) as SessionSnapshot).variables).toEqual({ ...back?.variables, c: 3 })
  await node.close()
}, 60_000)

it('shares one PostgreSQL database: each side hears the other on workflow_session_changes', async () => {
  const url = await scratch.database('ws_interop')

  const node = await postgresStore(url)
  const python = await startPython(['-m', 'workflow_session.serve', '--store', url, '--port', '0'], 'workflow-session on')
  const id = sessionId()
  const heard: Array<[string, number]> = []
  const unwatch = node.watch((sessionId, version) => heard.push([sessionId, version]))

  // Python's change feed hears a change made through Node.
  const controller = new AbortController()
  const stream = await fetch(`${python.url}/${id}/events`, { signal: controller.signal })
  const reader = stream.body!.getReader()
  let text = ''
  const until = async (pattern: RegExp) => {
    const deadline = Date.now() + 10_000
    while (!pattern.test(text)) {
      if (Date.now() > deadline) throw new Error(`no ${pattern} in the stream:\n${text}`)
      const { value, done } = await reader.read()
      if (done) throw new Error(`the stream ended:\n${text}`)
      text += new TextDecoder().decode(value)
    }
  }
  await until(/: connected/)
  await node.apply(id, { variables: { from: 'node' } })
  await until(/id: 1\nevent: snapshot\ndata: .*"from":"node"/)

  // Node's store hears a change made through Python.
  await fetch(`${python.url}/${id}`, json({ variables: { from: 'python' } }))
  await expect.poll(() => heard.some(([heardId, version]) => heardId === id && version === 2), { timeout: 10_000 }).toBe(true)
  expect((await node.get(id))?.variables).toEqual({ from: 'python' })
  await until(/id: 2\n/)

  controller.abort()
  unwatch()
  await node.close()
}, 60_000)
