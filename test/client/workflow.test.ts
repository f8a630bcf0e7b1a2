import fc from 'fast-check'
import { afterEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import {
  createSessionClient,
  memoryLocalCopy,
  parseWorkflowKey,
  schemaValidation,
  type SessionClient,
  type SessionPatch,
  type SessionSchema,
  workflowDataKey,
  workflowOf,
  workflowSlotKey,
} from '../../src/client/index.js'
import { createSessionHandler, memoryStore } from '../../src/server/index.js'
import { ENDPOINT, setupMockServer } from '../msw-server.js'

const mock = setupMockServer({
  // A server step working through the same scoped view as the client.
  ship: ({ workflow, input }) => {
    const checkout = workflow<{ items: string[]; shippedTo: string }>('checkout')
    const items = checkout.get('items', [])
    checkout.set('shippedTo', String(input))
    checkout.setStep('done')
    return { output: { count: items.length } }
  },
})
const clients: SessionClient[] = []
let n = 0
function makeClient(schema?: SessionSchema) {
  const client = createSessionClient({
    endpoint: ENDPOINT,
    sessionId: `workflow-session-${++n}`,
    storage: memoryLocalCopy(),
    locks: null,
    ...(schema && { plugins: [schemaValidation(schema)] }),
  })
  clients.push(client)
  return client
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.stop()))
})

describe('workflow key layout', () => {
  it('never maps two (workflow, field) pairs to one variable, whatever characters they hold', () => {
    const name = fc.oneof(fc.string(), fc.constantFrom('a', 'a:b', 'a_b', 'a/b', 'v', 'step', ':', '%3A', 'ünï', '🚀', 'a:v:b'))
    fc.assert(
      fc.property(name, name, name, name, (id1, key1, id2, key2) => {
        const same = id1 === id2 && key1 === key2
        expect(workflowDataKey(id1, key1) === workflowDataKey(id2, key2)).toBe(same)
        expect(parseWorkflowKey(workflowDataKey(id1, key1))).toEqual({ workflowId: id1, field: key1 })
        // A data field never takes a slot's name.
        expect(workflowDataKey(id1, key1)).not.toBe(workflowSlotKey(id2, 'step'))
      }),
      { numRuns: 2000 },
    )
  })

  it('keeps ids with _ : / and unicode apart', () => {
    const client = makeClient()
    const ids = ['a', 'a:b', 'a_b', 'a/b', 'a:v:b', 'ünïcødé', '🚀']
    for (const id of ids) workflowOf(client, id).set('k', id)
    for (const id of ids) expect(workflowOf(client, id).get('k')).toBe(id)
    for (const id of ids) expect(workflowOf(client, id).getAll()).toEqual({ k: id })
  })
})

describe('a workflow scope', () => {
  it('gets, sets, has, deletes and lists its own fields', () => {
    const client = makeClient()
    const signup = workflowOf<{ email: string; plan: string }>(client, 'signup')
    expect(signup.get('email')).toBeUndefined()
    expect(signup.get('email', 'none')).toBe('none')
    signup.set('email', 'ada@example.com')
    signup.set('plan', 'pro')
    expect(signup.has('email')).toBe(true)
    expect(signup.getAll()).toEqual({ email: 'ada@example.com', plan: 'pro' })
    signup.delete('plan')
    expect(signup.has('plan')).toBe(false)
    expect(signup.getAll()).toEqual({ email: 'ada@example.com' })
  })

  it('clear() removes only this workflow: not another, not one whose id starts the same, not plain variables', () => {
    const client = makeClient()
    client.set('plain', 1)
    workflowOf(client, 'a').set('x', 1)
    workflowOf(client, 'a').setStep('two')
    workflowOf(client, 'a:b').set('x', 2)
    workflowOf(client, 'ab').set('x', 3)
    workflowOf(client, 'a').clear()
    expect(workflowOf(client, 'a').getAll()).toEqual({})
    expect(workflowOf(client, 'a').step).toBeNull()
    expect(workflowOf(client, 'a:b').getAll()).toEqual({ x: 2 })
    expect(workflowOf(client, 'ab').getAll()).toEqual({ x: 3 })
    expect(client.get('plain')).toBe(1)
  })

  it('keeps the current step, and returns from a subflow two levels deep to the right steps', () => {
    const client = makeClient()
    const checkout = workflowOf(client, 'checkout')
    expect(checkout).toMatchObject({ step: null, flow: 'checkout', stack: [], params: null })
    checkout.setStep('cart')
    checkout.enterSubflow('payment', 'card', { amount: 42 })
    expect(checkout).toMatchObject({ flow: 'payment', step: 'card', params: { amount: 42 } })
    checkout.enterSubflow('3ds', 'challenge')
    expect(checkout.stack).toEqual([
      { flow: 'checkout', step: 'cart', params: null },
      { flow: 'payment', step: 'card', params: { amount: 42 } },
    ])
    checkout.exitSubflow('confirm')
    expect(checkout).toMatchObject({ flow: 'payment', step: 'confirm', params: { amount: 42 } })
    checkout.exitSubflow('review')
    expect(checkout).toMatchObject({ flow: 'checkout', step: 'review', params: null, stack: [] })
    expect(() => checkout.exitSubflow('nowhere')).toThrow(/not in a subflow/)
    expect(client.getSnapshot()).toEqual({ [workflowSlotKey('checkout', 'step')]: 'review' })
  })

  it('sends one key when one field changes, and the server stamps lastModified', async () => {
    const client = makeClient()
    const signup = workflowOf(client, 'signup')
    signup.set('email', 'a@b.c')
    signup.set('name', 'Ada')
    await client.flush()
    expect(signup.lastModified).toEqual(expect.stringMatching(/^\d{4}-\d\d-\d\dT/))
    const before = signup.lastModified
    mock.requests = []
    await new Promise((resolve) => setTimeout(resolve, 5))
    signup.set('email', 'ada@example.com')
    await client.flush()
    expect((mock.posts()[0]!.body as SessionPatch).variables).toEqual({ [workflowDataKey('signup', 'email')]: 'ada@example.com' })
    expect(signup.lastModified! > before!).toBe(true)
    expect(workflowOf(client, 'other').lastModified).toBeNull()
  })

  it('reaches server steps as the same view: the step reads and writes fields and the step', async () => {
    const client = makeClient()
    const checkout = workflowOf<{ items: string[]; shippedTo: string }>(client, 'checkout')
    checkout.set('items', ['milk', 'eggs'])
    const output = await client.run('ship', 'Paris')
    expect(output).toEqual({ count: 2 })
    expect(checkout.get('shippedTo')).toBe('Paris')
    expect(checkout.step).toBe('done')
    const stored = await mock.store.getWorkflow(client.sessionId, 'checkout')
    expect(stored).toMatchObject({ data: { items: ['milk', 'eggs'], shippedTo: 'Paris' }, step: 'done', flow: 'checkout', stack: [] })
  })

  it('records the session workflowId', async () => {
    const client = createSessionClient({
      endpoint: ENDPOINT,
      sessionId: `workflow-session-${++n}`,
      storage: memoryLocalCopy(),
      workflowId: 'signup',
    })
    clients.push(client)
    client.set('a', 1)
    await client.flush()
    expect(await mock.store.get(client.sessionId)).toMatchObject({ workflowId: 'signup' })
  })
})

describe('schemas (Standard Schema, here zod) on both sides', () => {
  const schema: SessionSchema = {
    variables: { age: z.number().int().min(0) },
    workflows: { signup: { email: z.email('Enter a valid email') } },
  }

  it('refuses an invalid value in set() with the schema message, changing nothing', () => {
    const client = makeClient(schema)
    expect(() => workflowOf(client, 'signup').set('email', 'not an email')).toThrow(/Enter a valid email/)
    expect(() => client.set('age', -1)).toThrow(TypeError)
    expect(client.getSnapshot()).toEqual({})
    workflowOf(client, 'signup').set('email', 'ada@example.com')
    client.set('age', 36)
    workflowOf(client, 'other').set('email', 'not checked here')
    expect(Object.keys(client.getSnapshot())).toHaveLength(3)
  })

  it('makes the server refuse the same values in patches and in step results', async () => {
    const handler = createSessionHandler({
      store: memoryStore(),
      schema,
      steps: { bad: ({ workflow }) => workflow('signup').set('email', 'broken') },
      onError: () => {},
    })
    const post = (path: string, body: unknown) =>
      handler(
        new Request(`http://localhost/api/session/schema-session-1${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      )
    const refused = await post('', { variables: { [workflowDataKey('signup', 'email')]: 'nope' } })
    expect(refused.status).toBe(400)
    expect(await refused.json()).toMatchObject({
      error: { code: 'invalid_patch', message: expect.stringContaining('Enter a valid email') },
    })
    expect((await post('', { variables: { age: 3 } })).status).toBe(200)
    const step = await post('/run/bad', {})
    expect(step.status).toBe(500)
    expect(await step.json()).toMatchObject({ error: { code: 'step_failed', message: expect.stringContaining('Enter a valid email') } })
  })
})
