import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  createSessionClient,
  defineMigrations,
  type LocalCopyStorage,
  memoryLocalCopy,
  type SessionClient,
  type SessionClientOptions,
  SET_ASIDE_KEY,
  type StandardSchemaV1,
} from '../../src/client/index.js'
import { conformanceSteps, type SessionStore, sqliteStore } from '../../src/server/index.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

// The Monday–Wednesday story (docs/protocol.md, "Schema versions"): a user types on Monday's page,
// the team deploys Tuesday's shape, and the edit reaches the server under its new name, once,
// whether the page stays open (the server moves the old patch) or is reloaded (the page moves
// what the device kept before sending it).

const tuesday = defineMigrations({
  version: 2,
  migrations: [{ to: 2, steps: [{ op: 'rename', from: 'address', to: 'shippingAddress' }] }],
})
/** A deploy that needs a function: what an old page queued cannot be moved by the server. */
const wednesday = defineMigrations(
  { version: 3, migrations: [...tuesday.declaration.migrations, { to: 3, steps: [{ op: 'function', name: 'split' }] }] },
  { split: (variables) => variables },
)

const mock = setupMockServer(conformanceSteps)
const clients: SessionClient[] = []
const opened: SessionStore[] = []
const dirs: string[] = []
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
  await Promise.all(opened.splice(0).map((store) => store.close()))
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })))
})

/** The server's database, and a deploy of it: the same file opened by the code of another version. */
async function database() {
  const dir = await mkdtemp(join(tmpdir(), 'ws-client-schema-'))
  dirs.push(dir)
  const deploy = async (migrations?: typeof tuesday, onError?: (error: unknown) => void) => {
    const store = await sqliteStore(join(dir, 'sessions.db'), { ...(migrations && { migrations }), ...(onError && { onError }) })
    opened.push(store)
    mock.store = store
    return store
  }
  return { deploy }
}

function page(sessionId: string, storage: LocalCopyStorage, options: Partial<SessionClientOptions> = {}) {
  const client = createSessionClient({ endpoint: ENDPOINT, sessionId, storage, locks: null, ...options })
  clients.push(client)
  return client
}

describe('an edit made before a deploy', () => {
  it('from a page left open: sent in its old version, moved by the server to the new name, once; the page hears it must update', async () => {
    const { deploy } = await database()
    await deploy()
    const updates: unknown[] = []
    const monday = page('schema-open-page', memoryLocalCopy(), { onUpdateNeeded: (versions) => updates.push(versions) })
    monday.set('address', 'Main St 1')
    await monday.flush()
    monday.setOnline(false)
    monday.set('address', 'Typed offline')
    const store = await deploy(tuesday)
    monday.setOnline(true)
    await monday.flush()
    const stored = (await store.get('schema-open-page'))!
    expect([stored.variables, stored.version, stored.schemaVersion]).toEqual([{ shippingAddress: 'Typed offline' }, 2, 2])
    expect(mock.posts().at(-1)!.body).not.toHaveProperty('schemaVersion') // Monday's page says nothing: version 1
    expect(monday.getStatus().needsUpdate).toBe(true)
    expect(updates).toEqual([{ page: 1, server: 2 }])
  })

  it('from a page closed offline and opened after the deploy: the kept base and queue are migrated, sent under the new name, once', async () => {
    const { deploy } = await database()
    await deploy()
    const device = memoryLocalCopy()
    const monday = page('schema-closed-page', device)
    monday.set('address', 'Main St 1')
    monday.set('email', 'ada@example.com')
    await monday.flush()
    monday.setOnline(false)
    monday.set('address', 'Typed offline')
    await monday.stop() // the tab closes; its edit waits on the device
    const store = await deploy(tuesday)
    const updates: unknown[] = []
    const tuesdayPage = page('schema-closed-page', device, { migrations: tuesday, onUpdateNeeded: (versions) => updates.push(versions) })
    await tuesdayPage.start()
    // Shown in Tuesday's shape before anything was fetched: the base and the queued edit, migrated.
    expect(tuesdayPage.getSnapshot()).toEqual({ shippingAddress: 'Typed offline', email: 'ada@example.com' })
    await tuesdayPage.flush()
    const sent = mock.posts().at(-1)!.body as { variables: Record<string, unknown>; schemaVersion: number }
    expect([sent.variables, sent.schemaVersion]).toEqual([{ shippingAddress: 'Typed offline' }, 2])
    const stored = (await store.get('schema-closed-page'))!
    expect([stored.variables, stored.version]).toEqual([{ shippingAddress: 'Typed offline', email: 'ada@example.com' }, 2])
    await tuesdayPage.refresh()
    expect(tuesdayPage.getSnapshot()).toEqual(stored.variables)
    expect([tuesdayPage.getStatus().needsUpdate, updates]).toEqual([false, []])
  })

  it('whose migrated value the app schema refuses: set aside, on the device and on the server, and named in the status', async () => {
    const { deploy } = await database()
    await deploy()
    const device = memoryLocalCopy()
    const monday = page('schema-set-aside', device)
    monday.set('years', 'forty')
    await monday.flush()
    await monday.stop()
    const numberOnly: StandardSchemaV1 = {
      '~standard': {
        version: 1,
        vendor: 'test',
        validate: (value) => (typeof value === 'number' ? { value } : { issues: [{ message: 'expected a number' }] }),
      },
    }
    const withSchema = defineMigrations(
      { version: 2, migrations: [{ to: 2, steps: [{ op: 'rename', from: 'years', to: 'age' }] }] },
      {},
      { schema: { variables: { age: numberOnly } } },
    )
    const reported: unknown[] = []
    const store = await deploy(withSchema, (error) => reported.push(error))
    const tuesdayPage = page('schema-set-aside', device, { migrations: withSchema })
    await tuesdayPage.start()
    const aside = { [SET_ASIDE_KEY]: { age: { value: 'forty', problem: 'expected a number', schemaVersion: 2 } } }
    expect([tuesdayPage.getSnapshot(), tuesdayPage.getStatus().setAside]).toEqual([aside, ['age']]) // migrated on the device
    await tuesdayPage.refresh()
    expect([tuesdayPage.getSnapshot(), tuesdayPage.getStatus().setAside]).toEqual([aside, ['age']]) // and on the server
    expect((await store.get('schema-set-aside'))!.variables).toEqual(aside)
    expect(reported).toMatchObject([{ name: 'SetAsideError', setAside: [{ name: 'age' }] }]) // told once, to the store's onError
  })

  it('that the server cannot move is refused with 409: the page keeps it queued, sends nothing more, and must update', async () => {
    const { deploy } = await database()
    await deploy(tuesday)
    const updates: unknown[] = []
    const tuesdayPage = page('schema-refused', memoryLocalCopy(), {
      migrations: tuesday,
      onUpdateNeeded: (versions) => updates.push(versions),
    })
    tuesdayPage.set('shippingAddress', 'Main St 1')
    await tuesdayPage.flush()
    await deploy(wednesday)
    tuesdayPage.set('shippingAddress', 'Typed after the deploy')
    await expect(tuesdayPage.flush()).rejects.toMatchObject({ code: 'schema_mismatch', schemaVersion: 3 })
    // A later flush (a run's barrier) fails at once too, not after its timeout.
    const began = Date.now()
    await expect(tuesdayPage.flush()).rejects.toMatchObject({ code: 'schema_mismatch' })
    expect(Date.now() - began).toBeLessThan(1000)
    const status = tuesdayPage.getStatus()
    expect([status.needsUpdate, status.error?.code, status.pendingKeys]).toEqual([true, 'schema_mismatch', ['shippingAddress']])
    expect(updates).toEqual([{ page: 2, server: 3 }])
    const posts = mock.posts().length
    tuesdayPage.set('email', 'more')
    tuesdayPage.sync()
    await new Promise((resolve) => setTimeout(resolve, 300))
    expect(mock.posts()).toHaveLength(posts) // nothing more is sent: the page must be reloaded
    expect(tuesdayPage.getSnapshot().shippingAddress).toBe('Typed after the deploy') // and nothing is lost
  })

  it('from a page newer than the server (a canary, a rollback): refused with 409, kept, and the page must update', async () => {
    const { deploy } = await database()
    const store = await deploy(tuesday)
    const updates: unknown[] = []
    const canary = page('schema-canary', memoryLocalCopy(), { migrations: wednesday, onUpdateNeeded: (versions) => updates.push(versions) })
    canary.set('shippingAddress', 'x')
    await expect(canary.flush()).rejects.toMatchObject({ code: 'schema_mismatch', schemaVersion: 2 })
    expect([canary.getStatus().needsUpdate, canary.getStatus().pendingKeys, updates]).toEqual([
      true,
      ['shippingAddress'],
      [{ page: 3, server: 2 }],
    ])
    expect(await store.get('schema-canary')).toBeNull()
  })

  it('a step called from a page of another version is refused with 409, and the page hears it must update', async () => {
    const { deploy } = await database()
    await deploy(wednesday)
    const updates: unknown[] = []
    const tuesdayPage = page('schema-step', memoryLocalCopy(), {
      migrations: tuesday,
      onUpdateNeeded: (versions) => updates.push(versions),
    })
    await expect(tuesdayPage.run('conformance_echo', { n: 1 })).rejects.toMatchObject({ code: 'schema_mismatch', schemaVersion: 3 })
    expect([tuesdayPage.getStatus().needsUpdate, updates]).toEqual([true, [{ page: 2, server: 3 }]])
  })

  it('left by a closed tab across a function step: the device migrates its base with and without the edit, and sends the difference', async () => {
    const { deploy } = await database()
    await deploy(tuesday)
    const device = memoryLocalCopy()
    const tuesdayPage = page('schema-function-step', device, { migrations: tuesday })
    tuesdayPage.set('name', 'Ada Lovelace')
    await tuesdayPage.flush()
    tuesdayPage.setOnline(false)
    tuesdayPage.set('name', 'Grace Hopper')
    await tuesdayPage.stop()
    const splitting = defineMigrations(
      { version: 3, migrations: [...tuesday.declaration.migrations, { to: 3, steps: [{ op: 'function', name: 'splitName' }] }] },
      {
        splitName: ({ name, ...rest }) => {
          const [firstName = '', ...last] = String(name ?? '').split(' ')
          return { ...rest, firstName, lastName: last.join(' ') }
        },
      },
    )
    const store = await deploy(splitting)
    const wednesdayPage = page('schema-function-step', device, { migrations: splitting })
    await wednesdayPage.start()
    expect(wednesdayPage.getSnapshot()).toEqual({ firstName: 'Grace', lastName: 'Hopper' })
    await wednesdayPage.flush()
    const sent = mock.posts().at(-1)!.body as { variables: Record<string, unknown>; schemaVersion: number }
    expect([sent.variables, sent.schemaVersion]).toEqual([{ firstName: 'Grace', lastName: 'Hopper' }, 3])
    expect((await store.get('schema-function-step'))!.variables).toEqual({ firstName: 'Grace', lastName: 'Hopper' })
    // The base migrated here was not stated as held: the next read was the server's whole snapshot.
    expect(wednesdayPage.getStatus().version).toBe((await store.get('schema-function-step'))!.version)
  })
})
