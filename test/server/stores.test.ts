import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { fileStore, openStore, type StoreOptions } from '../../src/server/index.js'
import { collect, kinds, newPlace, opened, openKind } from './store-kinds.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

describe.each(kinds)('$name store', (kind) => {
  const open = (options?: StoreOptions, place?: string) => openKind(kind, options, place)

  it('reads a missing session as null and creates one with the first patch', async () => {
    const { store } = await open()
    expect(await store.get('missing-session-1')).toBeNull()
    const { snapshot, applied } = await store.apply('session-session-1', { variables: { a: 1 } })
    expect(applied).toBe(true)
    expect(snapshot).toMatchObject({ sessionId: 'session-session-1', variables: { a: 1 }, version: 1 })
    expect(await store.get('session-session-1')).toEqual(snapshot)
  })

  it('hands out copies: changing a returned snapshot changes nothing stored', async () => {
    const { store } = await open()
    const { snapshot } = await store.apply('session-session-1', { variables: { list: [1] } })
    ;(snapshot.variables.list as number[]).push(2)
    const read = await store.get('session-session-1')
    ;(read!.variables.list as number[]).push(3)
    expect((await store.get('session-session-1'))!.variables.list).toEqual([1])
  })

  it('applies 200 concurrent patches of distinct keys to a new session: all present, version exactly 200', async () => {
    const { store } = await open()
    await Promise.all(
      Array.from({ length: 200 }, (_, i) => store.apply('burst-session-1', { variables: { [`k${i}`]: i }, clientId: `c${i}`, seq: 1 })),
    )
    const snapshot = await store.get('burst-session-1')
    expect(snapshot!.version).toBe(200)
    expect(Object.keys(snapshot!.variables)).toHaveLength(200)
    for (let i = 0; i < 200; i++) expect(snapshot!.variables[`k${i}`]).toBe(i)
  })

  it('applies a replayed seq once, and an older seq not at all', async () => {
    const { store } = await open()
    await store.apply('seq-session-1', { variables: { n: 1 }, clientId: 'tab', seq: 1 })
    await store.apply('seq-session-1', { variables: { n: 2 }, clientId: 'tab', seq: 2 })
    const replay = await store.apply('seq-session-1', { variables: { n: 2 }, clientId: 'tab', seq: 2 })
    const older = await store.apply('seq-session-1', { variables: { n: 1 }, clientId: 'tab', seq: 1 })
    expect(replay.applied).toBe(false)
    expect(older.applied).toBe(false)
    expect(await store.get('seq-session-1')).toMatchObject({ variables: { n: 2 }, version: 2 })
  })

  it('deletes a session', async () => {
    const { store } = await open()
    await store.apply('gone-session-1', { variables: { a: 1 } })
    expect(await store.delete('gone-session-1')).toBe(true)
    expect(await store.delete('gone-session-1')).toBe(false)
    expect(await store.get('gone-session-1')).toBeNull()
  })

  it('lists newest first, in pages, and per owner', async () => {
    const { store } = await open()
    for (const [id, userId] of [
      ['list-s-1', 'ada'],
      ['list-s-2', 'eve'],
      ['list-s-3', 'ada'],
      ['list-s-4', 'ada'],
    ] as const) {
      await store.apply(id, { variables: { id } }, { caller: { userId } })
      await sleep(3)
    }
    expect((await store.list()).map((s) => s.sessionId)).toEqual(['list-s-4', 'list-s-3', 'list-s-2', 'list-s-1'])
    expect((await store.list({ userId: 'ada', limit: 2 })).map((s) => s.sessionId)).toEqual(['list-s-4', 'list-s-3'])
    expect((await store.list({ userId: 'ada', limit: 2, offset: 2 })).map((s) => s.sessionId)).toEqual(['list-s-1'])
    expect((await store.list())[0]).not.toHaveProperty('variables')
  })

  it("refuses a caller's change to another owner's session as not_found, changing nothing", async () => {
    const { store } = await open()
    await store.apply('owned-session-1', { variables: { a: 1 } }, { caller: { userId: 'ada' } })
    await expect(store.apply('owned-session-1', { variables: { a: 2 } }, { caller: { userId: 'eve' } })).rejects.toMatchObject({
      code: 'not_found',
    })
    await expect(store.apply('owned-session-1', { variables: { a: 2 } }, { caller: { userId: null } })).rejects.toMatchObject({
      code: 'not_found',
    })
    expect(await store.get('owned-session-1')).toMatchObject({ variables: { a: 1 }, version: 1, userId: 'ada' })
  })

  it('refuses a merge that would pass the size limit, changing nothing', async () => {
    const { store } = await open()
    await store.apply('big-session-1', { variables: { a: 'x'.repeat(600) } }, { maxBytes: 1000 })
    await expect(store.apply('big-session-1', { variables: { b: 'y'.repeat(600) } }, { maxBytes: 1000 })).rejects.toMatchObject({
      code: 'too_large',
    })
    expect(await store.get('big-session-1')).toMatchObject({ version: 1 })
    expect((await store.get('big-session-1'))!.variables).not.toHaveProperty('b')
  })

  it('expires sessions after ttlMs: not found, not listed, purged, and a new patch starts afresh', async () => {
    const { store } = await open({ ttlMs: 150 })
    await store.apply('old-session-1', { variables: { a: 1 } })
    await store.apply('old-session-2', { variables: { a: 1 } })
    expect(await store.get('old-session-1')).not.toBeNull()
    await sleep(200)
    expect(await store.get('old-session-1')).toBeNull()
    expect(await store.list()).toEqual([])
    await sleep(20) // a read removes what it found expired, in a write of its own
    // The session read is purged already; only the one nobody read may be left for the purge.
    expect(await store.purgeExpired()).toBeLessThanOrEqual(1)
    expect(await store.purgeExpired()).toBe(0)
    expect(await store.apply('old-session-1', { variables: { b: 2 } })).toMatchObject({ snapshot: { variables: { b: 2 }, version: 1 } })
  })

  it('has typed getState / setState helpers', async () => {
    const { store } = await open()
    const snapshot = await store.setState<string[]>('typed-session-1', 'cart', ['milk'])
    expect(snapshot.version).toBe(1)
    const cart = await store.getState<string[]>('typed-session-1', 'cart')
    expect(cart).toEqual(['milk'])
    expect(await store.getState('typed-session-1', 'missing')).toBeUndefined()
    expect(await store.getState('no-such-session', 'cart')).toBeUndefined()
  })

  describe('the contract every store keeps', () => {
    const BAD_IDS: unknown[] = [
      '',
      '../victim',
      '../../etc/passwd',
      'short',
      'a'.repeat(129),
      'has space 1',
      'dots.in.id',
      'émile-session',
      42,
      null,
    ]

    it('refuses a bad session id in every method with the same typed error, touching nothing', async () => {
      const { store } = await open()
      const calls: Array<[string, (id: string) => Promise<unknown>]> = [
        ['get', (id) => store.get(id)],
        ['apply', (id) => store.apply(id, { variables: { a: 1 } })],
        ['create', (id) => store.create(id)],
        ['delete', (id) => store.delete(id)],
        ['getState', (id) => store.getState(id, 'a')],
        ['setState', (id) => store.setState(id, 'a', 1)],
        ['getWorkflow', (id) => store.getWorkflow(id, 'signup')],
        ['updateWorkflow', (id) => store.updateWorkflow(id, 'signup', (workflow) => workflow.set('a', 1))],
      ]
      for (const id of BAD_IDS) {
        for (const [method, call] of calls) {
          const outcome = await call(id as string).then(
            () => 'resolved',
            (error: { code?: string; message?: string }) => `${error.code}: ${error.message}`,
          )
          expect(outcome, `${method}(${JSON.stringify(id)})`).toMatch(/^invalid_session_id: .* is not a session id/)
        }
      }
      expect(await store.list()).toEqual([])
      expect(await collect(store.ids())).toEqual([])
    })

    it('keeps none of the caller’s objects: changing what was passed in or handed out changes nothing stored', async () => {
      const { store } = await open()
      const value = { list: [1], nested: { deep: ['a'] } }
      const applied = await store.apply('copies-session-1', { variables: { value }, deleted: [] })
      const created = await store.create('copies-session-2', { variables: { value } })
      const set = await store.setState('copies-session-3', 'value', value)
      value.list.push(2)
      value.nested.deep.push('b')
      for (const snapshot of [applied.snapshot, created, set])
        expect(snapshot.variables.value).toEqual({ list: [1], nested: { deep: ['a'] } })
      ;(applied.snapshot.variables.value as typeof value).list.push(3)
      ;(created.variables.value as typeof value).list.push(3)
      ;(set.variables.value as typeof value).list.push(3)
      for (const id of ['copies-session-1', 'copies-session-2', 'copies-session-3']) {
        expect((await store.get(id))!.variables.value).toEqual({ list: [1], nested: { deep: ['a'] } })
      }
      const deleted = ['value']
      await store.apply('copies-session-1', { deleted })
      deleted.push('other')
      expect((await store.get('copies-session-1'))!.variables).toEqual({})
    })

    it('lets trusted server code (no caller) reach every session, and a request’s caller only its own', async () => {
      const { store } = await open()
      await store.create('owned-by-ada-1', { variables: { a: 1 }, userId: 'ada' })
      // Trusted: read, write one key, read a workflow, delete.
      expect(await store.getState('owned-by-ada-1', 'a')).toBe(1)
      expect(await store.setState('owned-by-ada-1', 'b', 2)).toMatchObject({ version: 2, userId: 'ada', variables: { a: 1, b: 2 } })
      expect(await store.getWorkflow('owned-by-ada-1', 'signup')).toMatchObject({ data: {}, step: null })
      // Callers: the owner reaches it; anonymous and another user find nothing, and change nothing.
      const ada = { caller: { userId: 'ada' } }
      for (const caller of [{ userId: null }, { userId: 'eve' }]) {
        expect(await store.get('owned-by-ada-1', { caller })).toBeNull()
        await expect(store.apply('owned-by-ada-1', { variables: { a: 'stolen' } }, { caller })).rejects.toMatchObject({
          code: 'not_found',
          message: 'No such session',
        })
        expect(await store.delete('owned-by-ada-1', { caller })).toBe(false)
      }
      expect(await store.get('owned-by-ada-1', ada)).toMatchObject({ version: 2, variables: { a: 1, b: 2 } })
      // A session a caller creates is theirs; one made without a caller has no owner.
      await store.apply('made-by-eve-1', { variables: { x: 1 } }, { caller: { userId: 'eve' } })
      await store.apply('made-anonymously-1', { variables: { x: 1 } }, { caller: { userId: null } })
      expect((await store.get('made-by-eve-1'))!.userId).toBe('eve')
      expect(await store.get('made-anonymously-1')).not.toHaveProperty('userId')
      expect(await store.get('made-anonymously-1', { caller: { userId: 'eve' } })).not.toBeNull()
      await expect(store.get('made-by-eve-1', { caller: {} as never })).rejects.toThrow(/caller must be/)
      expect(await store.delete('owned-by-ada-1', ada)).toBe(true)
    })

    it('creates a session only where none is: version 1, owner and workflow recorded; a taken id is `exists`', async () => {
      const { store } = await open()
      const made = await store.create('created-session-1', { variables: { a: 1 }, workflowId: 'signup', userId: 'ada' })
      expect(made).toMatchObject({ sessionId: 'created-session-1', version: 1, variables: { a: 1 }, workflowId: 'signup', userId: 'ada' })
      expect(await store.create('created-empty-1')).toMatchObject({ version: 1, variables: {} })
      await expect(store.create('created-session-1', { variables: { a: 2 } })).rejects.toMatchObject({
        code: 'exists',
        message: 'A session with id "created-session-1" exists already',
      })
      await expect(store.create('created-bad-1', { variables: JSON.parse('{"__proto__": 1}') })).rejects.toMatchObject({
        code: 'invalid_key',
      })
      await expect(store.create('created-bad-2', { variables: { when: new Date() } as never })).rejects.toMatchObject({
        code: 'invalid_patch',
      })
      expect(await store.get('created-session-1')).toEqual(made)
      expect(await store.get('created-bad-1')).toBeNull()
      expect(await store.get('created-bad-2')).toBeNull()
    })

    it("adopts an ownerless session for a user, once; another user's session stays not_found", async () => {
      const { store } = await open()
      await store.apply('adoptable-1', { variables: { a: 1 } })
      expect(await store.adopt('adoptable-1', 'eve')).toMatchObject({ userId: 'eve', version: 2, variables: { a: 1 } })
      expect(await store.adopt('adoptable-1', 'eve')).toMatchObject({ userId: 'eve', version: 2 })
      await expect(store.adopt('adoptable-1', 'ada')).rejects.toMatchObject({ code: 'not_found' })
      await expect(store.adopt('missing-adopt-1', 'eve')).rejects.toMatchObject({ code: 'not_found' })
      expect(await store.get('adoptable-1', { caller: { userId: null } })).toBeNull()
      expect((await store.list({ userId: 'eve' })).map((summary) => summary.sessionId)).toEqual(['adoptable-1'])
    })

    it('walks every live session id, unpaged', async () => {
      const { store } = await open()
      const ids = Array.from({ length: 60 }, (_, i) => `walk-session-${String(i).padStart(3, '0')}`)
      for (const id of ids) await store.apply(id, { variables: { id } })
      await store.delete(ids[7]!)
      expect((await collect(store.ids())).sort()).toEqual(ids.filter((_, i) => i !== 7))
      expect(await store.list()).toHaveLength(50) // list stays paged for the UI
    })

    it('changes one workflow from server code as one patch, re-running the edit when another write lands first', async () => {
      const { store } = await open()
      await store.apply('workflow-edit-1', { variables: { plain: 1 } })
      const snapshot = await store.updateWorkflow('workflow-edit-1', 'checkout', (checkout) => {
        checkout.set('address', { city: 'Paris' })
        checkout.setStep('payment')
        checkout.enterSubflow('3ds', 'challenge', { amount: 42 })
      })
      expect(snapshot.version).toBe(2)
      expect(await store.getWorkflow('workflow-edit-1', 'checkout')).toMatchObject({
        data: { address: { city: 'Paris' } },
        step: 'challenge',
        flow: '3ds',
        stack: [{ flow: 'checkout', step: 'payment', params: null }],
        params: { amount: 42 },
      })
      expect((await store.getWorkflow('workflow-edit-1', 'checkout'))!.lastModified).toBe(snapshot.updatedAt)
      // Twenty concurrent read-modify-writes of one counter: none is lost.
      await Promise.all(
        Array.from({ length: 20 }, () =>
          store.updateWorkflow<{ count: number }>('workflow-edit-1', 'counter', (counter) =>
            counter.set('count', counter.get('count', 0) + 1),
          ),
        ),
      )
      expect((await store.getWorkflow('workflow-edit-1', 'counter'))!.data).toEqual({ count: 20 })
      expect((await store.get('workflow-edit-1'))!.version).toBe(22)
    })
  })
})

describe.each(kinds.filter((kind) => kind.durable))('$name store across a restart', (kind) => {
  const open = (options?: StoreOptions, place?: string) => openKind(kind, options, place)

  it('keeps everything across a restart, including which seqs were applied', async () => {
    const first = await open()
    const ada = { caller: { userId: 'ada' } }
    await first.store.apply('durable-session-1', { variables: { a: 1, b: [1, 2] }, clientId: 'tab', seq: 5 }, ada)
    await first.store.apply('durable-session-1', { deleted: ['a'], variables: { c: 'x' }, clientId: 'tab', seq: 6 }, ada)
    await first.store.close()

    const { store } = await open({}, first.place)
    expect(await store.get('durable-session-1')).toMatchObject({ variables: { b: [1, 2], c: 'x' }, version: 2, userId: 'ada' })
    const replay = await store.apply(
      'durable-session-1',
      { variables: { c: 'replayed' }, clientId: 'tab', seq: 6 },
      { caller: { userId: 'ada' } },
    )
    expect(replay.applied).toBe(false)
    expect((await store.list()).map((s) => s.sessionId)).toEqual(['durable-session-1'])
  })
})

describe('file store paths', () => {
  it('never reaches a file outside its folder, nor makes a hidden one', async () => {
    const place = await newPlace()
    await writeFile(join(place, 'victim.json'), '{"keep":true}')
    const store = fileStore(join(place, 'sessions'))
    opened.push(store)
    await expect(store.delete('../victim')).rejects.toMatchObject({ code: 'invalid_session_id' })
    await expect(store.get('../victim')).rejects.toMatchObject({ code: 'invalid_session_id' })
    await expect(store.apply('', { variables: { a: 1 } })).rejects.toMatchObject({ code: 'invalid_session_id' })
    expect(await readFile(join(place, 'victim.json'), 'utf8')).toBe('{"keep":true}')
    await store.apply('visible-session', { variables: { a: 1 } })
    expect(await collect(store.ids())).toEqual(['visible-session'])
  })
})

describe('openStore', () => {
  it('opens each store its URL names', async () => {
    const place = await newPlace()
    for (const url of ['memory:', `file:${join(place, 'files')}`, `sqlite:${join(place, 'db.sqlite')}`, 'sqlite::memory:']) {
      const store = await openStore(url)
      opened.push(store)
      await store.apply('opened-session-1', { variables: { url } })
      expect(await store.getState('opened-session-1', 'url')).toBe(url)
    }
  })

  it('says clearly what it cannot open', async () => {
    await expect(openStore('redis://localhost')).rejects.toThrow(/Use memory:, file:DIR, sqlite:PATH/)
    await expect(openStore('sessions.db')).rejects.toThrow(/cannot open "sessions.db"/)
    await expect(openStore('file:')).rejects.toThrow(/names no path/)
  })
})
