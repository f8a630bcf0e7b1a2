import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  conformanceMigrations,
  conformanceSteps,
  defineMigrations,
  memoryStore,
  migrateSessions,
  postgresStore,
  type SessionSnapshot,
  SET_ASIDE_KEY,
  SetAsideError,
  sqliteStore,
  type StandardSchemaV1,
  type Variables,
  workflowDataKey,
  workflowSlotKey,
} from '../../src/server/index.js'
import { tagOf } from '../../src/shared/delta.js'
import { DATABASE_URL, freshTable } from '../postgres.js'
import { setup } from './helpers.js'
import { kinds, newPlace, openKind } from './store-kinds.js'

// Schema versions (docs/protocol.md, "Schema versions"): a session stored at an older version is
// migrated before anything reads or writes it, once, with one version bump; a request says the
// version it was written in, and the server moves an older patch or refuses with 409.

/** Tuesday's deploy: `address` is now `shippingAddress`, `legacyFlag` is gone, `plan` lives in the checkout workflow. */
const tuesday = defineMigrations({
  version: 2,
  migrations: [
    {
      to: 2,
      steps: [
        { op: 'rename', from: 'address', to: 'shippingAddress' },
        { op: 'drop', name: 'legacyFlag' },
        { op: 'intoWorkflow', name: 'plan', workflow: 'checkout' },
      ],
    },
  ],
})
/** A Standard Schema that takes numbers only. */
const numberOnly: StandardSchemaV1 = {
  '~standard': {
    version: 1,
    vendor: 'test',
    validate: (value) => (typeof value === 'number' ? { value } : { issues: [{ message: 'expected a number' }] }),
  },
}
const monday = { address: 'Main St 1', legacyFlag: true, plan: 'pro', email: 'ada@example.com' }
// A migration changes the shape, not anyone's work: moving `plan` into the workflow leaves its `at` stamp (its lastModified) alone.
const migrated = { shippingAddress: 'Main St 1', [workflowDataKey('checkout', 'plan')]: 'pro', email: 'ada@example.com' }

describe.each(kinds.filter((kind) => kind.durable))('a session stored before a deploy, in the $name store', (kind) => {
  /** Monday's session, written by a store without migrations, and the store of Tuesday's code on the same place. */
  async function mondaySession(id = 'session-monday', variables: Variables = monday) {
    const place = await newPlace()
    const { store: before } = await openKind(kind, {}, place)
    await before.apply(id, { variables })
    const stored = (await before.get(id))!
    await before.close()
    const { store } = await openKind(kind, { migrations: tuesday }, place)
    return { store, stored, place }
  }

  it('is read migrated: renamed, dropped and moved, one version later, at schema version 2; a second read changes nothing', async () => {
    const { store, stored } = await mondaySession()
    expect(stored.schemaVersion).toBeUndefined()
    const read = (await store.get('session-monday'))!
    expect(read.variables).toEqual(migrated)
    expect([read.version, read.schemaVersion]).toEqual([stored.version + 1, 2])
    expect(await store.get('session-monday')).toEqual(read)
    expect(await store.migrate!('session-monday')).toBe(false)
  })

  it('takes a patch in one write with its migration: one version bump for both', async () => {
    const { store, stored } = await mondaySession()
    const result = await store.apply('session-monday', { variables: { email: 'new@example.com' }, clientId: 'tab-1', seq: 1 })
    expect(result.snapshot.variables).toEqual({ ...migrated, email: 'new@example.com' })
    expect([result.snapshot.version, result.snapshot.schemaVersion]).toEqual([stored.version + 1, 2])
    // A replay of that patch changes nothing more.
    const replay = await store.apply('session-monday', { variables: { email: 'new@example.com' }, clientId: 'tab-1', seq: 1 })
    expect([replay.applied, replay.snapshot.version]).toEqual([false, stored.version + 1])
  })

  it('answers a client holding the old tag a delta that makes the migrated session; the migration keeps updatedAt', async () => {
    // Ten variables the migration leaves alone: a delta of the five names it changed is smaller than the session.
    const untouched = Object.fromEntries(Array.from({ length: 10 }, (_, index) => [`kept${index}`, index]))
    const { store, stored } = await mondaySession('session-monday', { ...monday, ...untouched })
    const answer = (await store.since!('session-monday', { version: stored.version, createdAt: stored.createdAt }))!
    const read = (await store.get('session-monday'))!
    expect([answer.delta, answer.version]).toEqual([true, stored.version + 1])
    // Applied onto Monday's snapshot, it gives Tuesday's.
    const delta = JSON.parse(answer.json) as { variables: Record<string, unknown>; deleted: string[] }
    const applied = Object.fromEntries(Object.entries(stored.variables).filter(([name]) => !delta.deleted.includes(name)))
    expect({ ...applied, ...delta.variables }).toEqual(read.variables)
    // A migration changes no one's work: the session keeps its place in listings and its time to live.
    expect(read.updatedAt).toBe(stored.updatedAt)
  })

  it('writes the migration of a session whose patch is a replay, and answers the migrated session', async () => {
    const place = await newPlace()
    const { store: before } = await openKind(kind, {}, place)
    await before.apply('session-replay', { variables: monday, clientId: 'tab-1', seq: 1 })
    const stored = (await before.get('session-replay'))!
    await before.close()
    const { store } = await openKind(kind, { migrations: tuesday }, place)
    const replay = await store.apply('session-replay', { variables: { address: 'again' }, clientId: 'tab-1', seq: 1 }, { schemaVersion: 1 })
    expect([replay.snapshot.variables, replay.snapshot.version]).toEqual([migrated, stored.version + 1])
  })

  it('is migrated when listed, and a run reads the migrated variables', async () => {
    const place = await newPlace()
    const { store: before } = await openKind(kind, {}, place)
    await before.apply('session-listed', { variables: monday }, { caller: { userId: 'ada' } })
    await before.close()
    const { store } = await openKind(kind, { migrations: tuesday }, place)
    const [summary] = await store.list({ userId: 'ada' })
    expect([summary!.sessionId, summary!.version]).toEqual(['session-listed', 2])
    expect((await store.get('session-listed'))!.variables).toEqual(migrated)
    const { store: other, stored } = await mondaySession('session-runner')
    const started = await other.startRun('session-runner', { runId: 'run-00000001', step: 'echo' })
    expect(started.variables).toEqual(migrated)
    expect(started.run.readVersion).toBe(stored.version + 1)
  })

  it('sets aside a migrated value the app schema refuses, keeps it, and reports it once', async () => {
    const place = await newPlace()
    const { store: before } = await openKind(kind, {}, place)
    await before.apply('session-aside', { variables: { years: 'forty', email: 'ada@example.com' } })
    await before.close()
    const errors: unknown[] = []
    const migrations = defineMigrations(
      { version: 2, migrations: [{ to: 2, steps: [{ op: 'rename', from: 'years', to: 'age' }] }] },
      {},
      { schema: { variables: { age: numberOnly } } },
    )
    const { store } = await openKind(kind, { migrations, onError: (error) => errors.push(error) }, place)
    const [read] = await Promise.all([store.get('session-aside'), store.get('session-aside')])
    expect(read!.variables).toEqual({
      email: 'ada@example.com',
      [SET_ASIDE_KEY]: { age: { value: 'forty', problem: 'expected a number', schemaVersion: 2 } },
    })
    expect(errors).toHaveLength(1)
    expect(errors[0]).toBeInstanceOf(SetAsideError)
    expect(errors[0]).toMatchObject({
      sessionId: 'session-aside',
      schemaVersion: 2,
      setAside: [{ name: 'age', problem: 'expected a number' }],
    })
    await store.get('session-aside')
    expect(errors).toHaveLength(1)
  })

  it('migrateSessions migrates every stored session ahead of time, with progress', async () => {
    const place = await newPlace()
    const { store: before } = await openKind(kind, {}, place)
    for (let index = 0; index < 5; index++) await before.apply(`session-job-${index}`, { variables: monday })
    await before.close()
    const { store } = await openKind(kind, { migrations: tuesday }, place)
    await store.get('session-job-3') // one was read (so migrated) before the job
    const seen: number[] = []
    const done = await migrateSessions(store, { onProgress: ({ done }) => seen.push(done) })
    expect(done).toEqual({ done: 5, migrated: 4 })
    expect(seen).toEqual([1, 2, 3, 4, 5])
    expect((await migrateSessions(store)).migrated).toBe(0)
    for (let index = 0; index < 5; index++) expect((await store.get(`session-job-${index}`))!.version).toBe(2)
  })
})

describe('a store with a schema', () => {
  it('writes new sessions at its schema version, and a store without one at 1 (left out of snapshots)', async () => {
    const store = memoryStore({ migrations: tuesday })
    const created = await store.apply('session-new', { variables: { shippingAddress: 'x' } })
    expect([created.snapshot.version, created.snapshot.schemaVersion]).toEqual([1, 2])
    expect(await store.get('session-new')).toEqual(created.snapshot)
    const plain = (await memoryStore().apply('session-new', { variables: { a: 1 } })).snapshot
    expect(Object.keys(plain)).not.toContain('schemaVersion')
  })

  it('moves a patch of an older schema version, and refuses one it cannot move or a newer one, changing nothing', async () => {
    const withFunction = defineMigrations(
      { version: 3, migrations: [...tuesday.declaration.migrations, { to: 3, steps: [{ op: 'function', name: 'split' }] }] },
      { split: (variables) => variables },
    )
    const store = memoryStore({ migrations: withFunction })
    await store.apply('session-moves', { variables: { email: 'a' } })
    await expect(
      store.apply('session-moves', { variables: { address: 'Main St 1' }, deleted: ['legacyFlag'] }, { schemaVersion: 1 }),
    ).rejects.toMatchObject({ code: 'schema_mismatch', schemaVersion: 3 })
    await expect(store.apply('session-moves', { variables: { a: 1 } }, { schemaVersion: 4 })).rejects.toMatchObject({
      code: 'schema_mismatch',
      schemaVersion: 3,
    })
    // A function step lies between version 2 and 3 too: a patch of version 2 cannot be moved either.
    await expect(store.apply('session-moves', { variables: { a: 1 } }, { schemaVersion: 2 })).rejects.toMatchObject({
      code: 'schema_mismatch',
    })
    expect((await store.get('session-moves'))!.version).toBe(1)
    const twoStore = memoryStore({ migrations: tuesday })
    await twoStore.apply('session-moves', { variables: { email: 'a' } })
    const moved = await twoStore.apply(
      'session-moves',
      { variables: { address: 'Main St 1', plan: 'pro', legacyFlag: 1 } },
      { schemaVersion: 1 },
    )
    // A patch is someone's work: the workflow it writes into is stamped.
    expect(moved.snapshot.variables).toEqual({ ...migrated, email: 'a', [workflowSlotKey('checkout', 'at')]: moved.snapshot.updatedAt })
    // The same names in a patch of version 2 are new names of version 2: not moved again.
    const current = await twoStore.apply('session-moves', { variables: { address: 'again' } }, { schemaVersion: 2 })
    expect(current.snapshot.variables.address).toBe('again')
  })

  it('answers a session stored at a newer schema version as it is, and refuses to write it (a rollback)', async () => {
    const place = await newPlace()
    const path = join(place, 'rollback.db')
    const wednesday = defineMigrations({ version: 3, migrations: [...tuesday.declaration.migrations, { to: 3, steps: [] }] })
    const newer = await sqliteStore(path, { migrations: wednesday })
    await newer.apply('session-newer', { variables: { shippingAddress: 'x' } })
    await newer.close()
    const older = await sqliteStore(path, { migrations: tuesday })
    try {
      const read = (await older.get('session-newer'))!
      expect([read.version, read.schemaVersion, read.variables]).toEqual([1, 3, { shippingAddress: 'x' }])
      await expect(older.apply('session-newer', { variables: { a: 1 } })).rejects.toMatchObject({
        code: 'schema_mismatch',
        schemaVersion: 3,
      })
      await expect(older.startRun('session-newer', { runId: 'run-00000001', step: 'echo' })).rejects.toMatchObject({
        code: 'schema_mismatch',
      })
      expect(await older.get('session-newer')).toEqual(read)
    } finally {
      await older.close()
    }
  })

  it('ends a run failed, merging nothing, when newer code wrote its session while it ran', async () => {
    const path = join(await newPlace(), 'run-rollback.db')
    const wednesday = defineMigrations({ version: 3, migrations: [...tuesday.declaration.migrations, { to: 3, steps: [] }] })
    const older = await sqliteStore(path, { migrations: tuesday })
    await older.startRun('session-run', { runId: 'run-00000001', step: 'echo' })
    const newer = await sqliteStore(path, { migrations: wednesday })
    await newer.apply('session-run', { variables: { a: 1 } })
    await newer.close()
    try {
      const finished = await older.finishRun('session-run', 'run-00000001', { status: 'succeeded', change: { variables: { b: 2 } } })
      expect([finished!.run.status, finished!.run.error?.code, finished!.session]).toEqual(['failed', 'step_failed', null])
      expect((await older.get('session-run'))!.variables).toEqual({ a: 1 })
    } finally {
      await older.close()
    }
  })
})

describe('the wire', () => {
  const server = () => setup({ store: memoryStore({ migrations: conformanceMigrations }), steps: conformanceSteps })

  it('a patch says its schema version: an older one is moved, a newer one is 409 with the server version, a bad one 400', async () => {
    const { call } = server()
    const old = await call('POST', '/api/session/session-wire-1', { variables: { conformance_v1: 'a' } })
    expect([old.status, old.body.variables, old.body.schemaVersion]).toEqual([200, { conformance_v2: 'a' }, 2])
    const current = await call('POST', '/api/session/session-wire-1', { variables: { conformance_v1: 'b' }, schemaVersion: 2 })
    expect(current.body.variables).toEqual({ conformance_v2: 'a', conformance_v1: 'b' })
    const newer = await call('POST', '/api/session/session-wire-1', { variables: { x: 1 }, schemaVersion: 3 })
    expect([newer.status, newer.body.error.code, newer.body.error.schemaVersion]).toEqual([409, 'schema_mismatch', 2])
    for (const bad of [0, 1.5, '2', true, null, -1]) {
      const answer = await call('POST', '/api/session/session-wire-1', { variables: { x: 1 }, schemaVersion: bad })
      expect([bad, answer.status, answer.body.error.code]).toEqual([bad, 400, 'invalid_patch'])
    }
    expect((await call('GET', '/api/session/session-wire-1')).body.version).toBe(2)
  })

  it('a run start and a step call must be in the server schema version', async () => {
    const { call } = server()
    await call('POST', '/api/session/session-wire-2', { variables: { kept: 1 }, schemaVersion: 2 })
    for (const schemaVersion of [undefined, 1, 3]) {
      const run = await call('POST', '/api/session/session-wire-2/runs', { runId: 'run-00000001', step: 'conformance_echo', schemaVersion })
      expect([schemaVersion, run.status, run.body.error?.code]).toEqual([schemaVersion, 409, 'schema_mismatch'])
      const step = await call('POST', '/api/session/session-wire-2/run/conformance_echo', { input: 1, schemaVersion })
      expect([schemaVersion, step.status, step.body.error?.code]).toEqual([schemaVersion, 409, 'schema_mismatch'])
    }
    expect(
      (await call('POST', '/api/session/session-wire-2/runs', { runId: 'run-00000001', step: 'conformance_echo', schemaVersion: '2' }))
        .status,
    ).toBe(400)
    const step = await call('POST', '/api/session/session-wire-2/run/conformance_echo', { input: 1, schemaVersion: 2 })
    expect([step.status, step.body.session.version, step.body.session.schemaVersion]).toEqual([200, 2, 2])
    const run = await call('POST', '/api/session/session-wire-2/runs?waitMs=5000', {
      runId: 'run-00000002',
      step: 'conformance_echo',
      schemaVersion: 2,
    })
    expect(run.body.run.status).toBe('succeeded')
  })

  it('moves an old patch before the app schema checks it: what will be stored is what is checked', async () => {
    const { call } = setup({
      store: memoryStore({ migrations: conformanceMigrations }),
      schema: { variables: { conformance_v2: numberOnly } },
    })
    const refused = await call('POST', '/api/session/session-wire-5', { variables: { conformance_v1: 'text' } })
    expect([refused.status, refused.body.error.code]).toEqual([400, 'invalid_patch'])
    const taken = await call('POST', '/api/session/session-wire-5', { variables: { conformance_v1: 7 } })
    expect([taken.status, taken.body.variables]).toEqual([200, { conformance_v2: 7 }])
  })

  it('checks the owner first: another user’s session is 404 whatever the schema version', async () => {
    const { call } = setup({
      store: memoryStore({ migrations: conformanceMigrations }),
      authorize: (request) => request.headers.get('x-user'),
    })
    await call('POST', '/api/session/session-wire-3', { variables: { a: 1 }, schemaVersion: 2 }, { 'x-user': 'ada' })
    const stranger = await call('POST', '/api/session/session-wire-3', { variables: { a: 2 }, schemaVersion: 9 }, { 'x-user': 'eve' })
    expect([stranger.status, stranger.body.error.code]).toEqual([404, 'not_found'])
  })

  it('a delta carries the schema version', async () => {
    const { call } = server()
    const first = (await call('POST', '/api/session/session-wire-4', { variables: { a: 1 }, schemaVersion: 2 })).body as SessionSnapshot
    const delta = await call(
      'POST',
      '/api/session/session-wire-4',
      { variables: { a: 2 }, schemaVersion: 2 },
      { 'session-base': tagOf(first) },
    )
    expect([delta.body.base, delta.body.schemaVersion]).toEqual([1, 2])
  })
})

describe('two processes reading the same old sessions at once', () => {
  function runMigrator(where: string, startAt: number): Promise<{ migrated: number; versions: number[] }> {
    const script = fileURLToPath(new URL('./fixtures/schema-migrator.ts', import.meta.url))
    const child = spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '--import', 'tsx', script, where, String(startAt)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    return new Promise((resolve, reject) =>
      child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(output)) : reject(new Error(`schema-migrator exited ${code}`)))),
    )
  }

  const places = [
    { name: 'SQLite', open: async () => ({ where: `sqlite:${join(await newPlace(), 'shared.db')}` }) },
    { name: 'PostgreSQL', open: async () => ({ where: `postgres:${freshTable()}` }) },
  ]

  it.each(places)(
    '$name: each session is migrated once, one version later',
    async ({ open }) => {
      const { where } = await open()
      const place = where.slice(where.indexOf(':') + 1)
      const before = where.startsWith('sqlite:') ? await sqliteStore(place) : await postgresStore(DATABASE_URL, { table: place })
      const ids = Array.from({ length: 40 }, (_, index) => `session-race-${String(index).padStart(2, '0')}`)
      for (const id of ids) await before.apply(id, { variables: { address: id, n: 1 } })
      await before.apply(ids[0]!, { variables: { n: 2 } }) // one at version 2 before the deploy
      await before.close()
      const startAt = Date.now() + 1500
      const [left, right] = await Promise.all([runMigrator(where, startAt), runMigrator(where, startAt)])
      // Every session read at its migrated version by both, and the ones migrated through migrate() counted once.
      const expected = ids.map((_, index) => (index === 0 ? 3 : 2))
      expect(left.versions).toEqual(expected)
      expect(right.versions).toEqual(expected)
      expect(left.migrated + right.migrated).toBe(ids.filter((id) => Number(id.slice(-2)) % 2 === 0).length)
      const after = where.startsWith('sqlite:')
        ? await sqliteStore(place, { migrations: tuesday })
        : await postgresStore(DATABASE_URL, { table: place, migrations: tuesday })
      try {
        const read = (await after.get(ids[5]!))!
        expect([read.variables, read.version, read.schemaVersion]).toEqual([{ shippingAddress: ids[5], n: 1 }, 2, 2])
      } finally {
        await after.close()
      }
    },
    60_000,
  )
})
