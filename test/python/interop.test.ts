import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { expect, it } from 'vitest'
import {
  conformanceMigrations,
  conformanceSteps,
  createSessionHandler,
  defineMigrations,
  type MigrationsDeclaration,
  postgresStore,
  serve,
  type SessionSnapshot,
  sqliteStore,
} from '../../src/server/index.js'
import { applyDelta, tagOf } from '../../src/shared/delta.js'
import type { SessionDelta } from '../../src/shared/protocol.js'
import { sharedScratch } from './shared-scratch.js'
import { startPython, stopPython } from './venv.js'

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

it('answers deltas across languages on one SQLite file: a client holding a version from one server gets from the other exactly what changed', async () => {
  const file = join(scratch.place, 'deltas.db')
  const store = await sqliteStore(file)
  const node = await serve({ handler: createSessionHandler({ store }), port: 0, onClose: () => store.close() })
  const python = await startPython(['-m', 'workflow_session.serve', '--store', `sqlite:${file}`, '--port', '0'], 'workflow-session on')
  const nodeUrl = `${node.url}/api/session`
  const id = sessionId()
  const seed = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`v${i}`, `value ${i}`]))
  await fetch(`${nodeUrl}/${id}`, json({ variables: seed }))
  let held = (await (await fetch(`${nodeUrl}/${id}`)).json()) as SessionSnapshot
  // Each side writes, and a client holding the version before asks the other side.
  const rounds: Array<[string, string]> = [
    [python.url, nodeUrl],
    [nodeUrl, python.url],
    [python.url, python.url],
    [nodeUrl, nodeUrl],
  ]
  for (const [index, [writer, reader]] of rounds.entries()) {
    await fetch(`${writer}/${id}`, json({ variables: { [`v${index}`]: `changed by round ${index}` }, deleted: [`v${100 + index}`] }))
    const answer = await fetch(`${reader}/${id}`, { headers: { 'session-base': tagOf(held) } })
    const body = (await answer.json()) as SessionDelta
    expect(body).toMatchObject({ base: held.version, version: held.version + 1, deleted: [`v${100 + index}`] })
    expect(JSON.stringify(body).length).toBeLessThan(400)
    held = applyDelta(held, body)!
    expect(held).toEqual(await (await fetch(`${writer}/${id}`)).json())
    expect((await fetch(`${reader}/${id}`, { headers: { 'session-base': tagOf(held) } })).status).toBe(304)
  }
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

it('shares runs on one SQLite file: a run started through Python is followed and its end read through Node, and a start with its id on Node runs nothing', async () => {
  const file = join(scratch.place, 'runs.db')
  const python = await startPython(
    ['-m', 'workflow_session.serve', '--store', `sqlite:${file}`, '--port', '0', '--conformance'],
    'workflow-session on',
  )
  // --conformance declares the conformance schema (version 2): the Node server does too, and runs say it.
  const nodeStore = await sqliteStore(file, { migrations: conformanceMigrations })
  const node = await serve({
    port: 0,
    handler: createSessionHandler({ store: nodeStore, steps: conformanceSteps, log: () => {} }),
    onClose: () => nodeStore.close(),
  })
  const id = sessionId()
  await fetch(`${python.url}/${id}`, json({ variables: { kept: 1 } }))
  const start = { runId: `run-${id}`, step: 'conformance_echo', input: { sleepMs: 1500 }, schemaVersion: 2 }
  const started = await fetch(`${python.url}/${id}/runs`, json(start))
  expect(started.status).toBe(202)
  // Node reads the same record, and a start with the same id there finds it: 200, nothing run twice.
  const again = await fetch(`${node.url}/api/session/${id}/runs`, json(start))
  expect(again.status).toBe(200)
  expect(((await again.json()) as { run: { runId: string } }).run.runId).toBe(start.runId)
  let run: { status: string; rev: number; output: unknown; version: number | null } = {
    status: 'running',
    rev: 0,
    output: null,
    version: null,
  }
  const deadline = Date.now() + 15_000
  while (run.status === 'running' && Date.now() < deadline) {
    const answer = await fetch(`${node.url}/api/session/${id}/runs/${start.runId}?after=${run.rev}&waitMs=2000`)
    run = ((await answer.json()) as { run: typeof run }).run
  }
  expect(run).toMatchObject({ status: 'succeeded', output: { input: start.input, seen: { kept: 1 } }, version: 2 })
  expect((await nodeStore.get(id))?.version).toBe(2)
  await node.close()
}, 60_000)

it('shares runs on one PostgreSQL database: a run started through Node is cancelled through Python, and nothing is merged', async () => {
  const url = await scratch.database('ws_interop_runs')
  const nodeStore = await postgresStore(url)
  const node = await serve({
    port: 0,
    handler: createSessionHandler({ store: nodeStore, steps: conformanceSteps, log: () => {} }),
    onClose: () => nodeStore.close(),
  })
  const python = await startPython(['-m', 'workflow_session.serve', '--store', url, '--port', '0', '--conformance'], 'workflow-session on')
  const id = sessionId()
  await fetch(`${node.url}/api/session/${id}`, json({ variables: { kept: 1 } }))
  const start = { runId: `run-${id}`, step: 'conformance_echo', input: { sleepMs: 30_000 } }
  expect((await fetch(`${node.url}/api/session/${id}/runs`, json(start))).status).toBe(202)
  const cancelled = (await (await fetch(`${python.url}/${id}/runs/${start.runId}/cancel`, { method: 'POST' })).json()) as {
    run: { status: string }
  }
  expect(cancelled.run.status).toBe('cancelled')
  const seen = (await (await fetch(`${node.url}/api/session/${id}/runs/${start.runId}`)).json()) as { run: { status: string } }
  expect(seen.run.status).toBe('cancelled')
  // The Node server's step sees the cancel at its next heartbeat (within 5 s) and stops; nothing of it is merged.
  await new Promise((resolve) => setTimeout(resolve, 6000))
  expect((await nodeStore.get(id))?.variables).toEqual({ kept: 1 })
  await node.close()
}, 60_000)

it('migrates alike across languages on one SQLite file: one declaration, each old session migrated once by whichever server reads it first', async () => {
  const file = join(scratch.place, 'schema.db')
  const declaration: MigrationsDeclaration = {
    version: 2,
    migrations: [
      {
        to: 2,
        steps: [
          { op: 'rename', from: 'address', to: 'shippingAddress' },
          { op: 'drop', name: 'legacyFlag' },
        ],
      },
    ],
  }
  // Monday: sessions written before any schema, by each side.
  const monday = await sqliteStore(file)
  const [fromNode, fromPython] = [sessionId(), sessionId()]
  await monday.apply(fromNode, { variables: { address: 'Node St 1', legacyFlag: true } })
  await monday.close()
  const mondayPython = await startPython(
    ['-m', 'workflow_session.serve', '--store', `sqlite:${file}`, '--port', '0'],
    'workflow-session on',
  )
  await fetch(`${mondayPython.url}/${fromPython}`, json({ variables: { address: 'Python St 1', legacyFlag: true } }))
  await stopPython(mondayPython.child)
  // Tuesday: both servers read the same declaration, and each reads first the session the other wrote.
  const declared = join(scratch.place, 'schema.json')
  await writeFile(declared, JSON.stringify(declaration))
  const store = await sqliteStore(file, { migrations: defineMigrations(declaration) })
  const python = await startPython(
    ['-m', 'workflow_session.serve', '--store', `sqlite:${file}`, '--migrations', declared, '--port', '0'],
    'workflow-session on',
  )
  const byPython = (await (await fetch(`${python.url}/${fromNode}`)).json()) as SessionSnapshot
  const byNode = (await store.get(fromPython))!
  expect([byPython.variables, byPython.version, byPython.schemaVersion]).toEqual([{ shippingAddress: 'Node St 1' }, 2, 2])
  expect([byNode.variables, byNode.version, byNode.schemaVersion]).toEqual([{ shippingAddress: 'Python St 1' }, 2, 2])
  // Read by the other side now: current, not migrated again.
  expect(await store.get(fromNode)).toEqual(byPython)
  expect(await (await fetch(`${python.url}/${fromPython}`)).json()).toEqual(byNode)
  // A patch of Monday's page moves the same way on both.
  const moved = (await (
    await fetch(`${python.url}/${fromNode}`, json({ variables: { address: 'Typed on Monday' } }))
  ).json()) as SessionSnapshot
  expect(moved.variables).toEqual({ shippingAddress: 'Typed on Monday' })
  expect((await store.apply(fromPython, { variables: { address: 'Typed on Monday' } }, { schemaVersion: 1 })).snapshot.variables).toEqual({
    shippingAddress: 'Typed on Monday',
  })
  await stopPython(python.child)
  await store.close()
}, 60_000)
