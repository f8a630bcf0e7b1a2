import { describe, expect, it } from 'vitest'
import {
  type ApplyOptions,
  memoryStore,
  type SessionChange,
  type SessionStore,
  sqliteStore,
  type StandardSchemaV1,
} from '../../src/server/index.js'
import { ID, setup } from './helpers.js'

// The handler reaches a store through its public methods only: a wrapper made the obvious way,
// `{ ...store, apply }`, sees every patch and every step's merge, whatever store it wraps.

describe.each([
  ['memory', async () => memoryStore()],
  ['sqlite', async () => sqliteStore(':memory:')],
] as const)('a %s store wrapped with { ...store, apply }', (_, open) => {
  it('is called for every patch and every step, and its answer is what the client gets', async () => {
    const inner: SessionStore = await open()
    const seen: Array<{ sessionId: string; change: SessionChange; options: ApplyOptions | undefined }> = []
    const store: SessionStore = {
      ...inner,
      apply: async (sessionId, change, options) => {
        seen.push({ sessionId, change, options })
        return inner.apply(sessionId, change, options)
      },
    }
    const { call } = setup({ store, steps: { stamp: () => ({ output: 'ok', variables: { stamped: true } }) } })
    const patch = await call('POST', `/api/session/${ID}`, { variables: { email: 'a@b.c' }, clientId: 'tab-1', seq: 1 })
    expect(patch.body).toMatchObject({ variables: { email: 'a@b.c' }, version: 1 })
    const run = await call('POST', `/api/session/${ID}/run/stamp`)
    expect(run.body).toMatchObject({ output: 'ok', session: { variables: { email: 'a@b.c', stamped: true }, version: 2 } })
    expect(seen.map(({ sessionId, change }) => ({ sessionId, change }))).toEqual([
      { sessionId: ID, change: { variables: { email: 'a@b.c' }, clientId: 'tab-1', seq: 1 } },
      { sessionId: ID, change: { variables: { stamped: true }, deleted: [] } },
    ])
    expect(seen.every(({ options }) => options?.caller?.userId === null)).toBe(true)
    await inner.close()
  })

  it('answers with the snapshot a wrapper returns when it changes it (and leaves json out)', async () => {
    const inner: SessionStore = await open()
    const store: SessionStore = {
      ...inner,
      apply: async (sessionId, change, options) => {
        const { snapshot, applied } = await inner.apply(sessionId, change, options)
        return { applied, snapshot: { ...snapshot, variables: { ...snapshot.variables, secret: '[hidden]' } } }
      },
    }
    const { call } = setup({ store })
    const { body } = await call('POST', `/api/session/${ID}`, { variables: { secret: 'hunter2' } })
    expect(body.variables).toEqual({ secret: '[hidden]' })
    await inner.close()
  })
})

it("a store's apply answers its JSON text too, and the parsed snapshot only when read", async () => {
  const store = memoryStore()
  const result = await store.apply(ID, { variables: { a: 1 } })
  expect(JSON.parse(result.json!)).toEqual(result.snapshot)
  expect(result.snapshot).toBe(result.snapshot) // parsed once
})

it('answers with the snapshot a wrapper changed in place (the store drops its text once the snapshot is read)', async () => {
  const inner = memoryStore()
  const store: SessionStore = {
    ...inner,
    apply: async (sessionId, change, options) => {
      const result = await inner.apply(sessionId, change, options)
      result.snapshot.variables.secret = '[hidden]'
      return result
    },
  }
  const { call } = setup({ store })
  const { body } = await call('POST', `/api/session/${ID}`, { variables: { secret: 'hunter2' } })
  expect(body.variables).toEqual({ secret: '[hidden]' })
})

it("stores what was checked, whatever the app's schema does to the value it is given", async () => {
  // A validator that changes its input in place (fills in a default, converts a type): after the
  // edge's check the change is not checked again, so the validator must not reach what is stored.
  const mutating: StandardSchemaV1 = {
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: (value) => {
        Object.assign(value as object, { when: new Date(0), gone: undefined })
        return { value }
      },
    },
  }
  const { call, store } = setup({ schema: { variables: { profile: mutating } } })
  const { status, body } = await call('POST', `/api/session/${ID}`, { variables: { profile: { name: 'Ada' } } })
  expect(status).toBe(200)
  expect(body.variables).toEqual({ profile: { name: 'Ada' } })
  expect(await store.getState(ID, 'profile')).toEqual({ name: 'Ada' })
})
