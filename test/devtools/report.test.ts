// devtoolsReport: what "Copy report" copies. No value leaves unless asked: each variable value,
// run input, progress and output is replaced by its type and size; names and errors stay.
import { afterEach, describe, expect, it } from 'vitest'
import { createSessionClient, memoryLocalCopy, type SessionClient, SessionError } from '../../src/client/index.js'
import { type InspectorEvent, inspectSession, type SessionInspection } from '../../src/devtools/inspector.js'
import { describeValue, devtoolsReport } from '../../src/devtools/report.js'
import { createSessionHandler, memoryStore } from '../../src/server/index.js'

const SECRET = 'hunter2-very-secret'
const AT = Date.UTC(2026, 10, 21, 4, 0, 0)

function inspection(): SessionInspection {
  const refusal = new SessionError('bad_request', 'email is invalid', 400)
  return {
    at: AT,
    sessionId: 'session-abcdef12',
    clientId: 'c-page',
    endpoint: '/api/session',
    status: {
      isDirty: true,
      isSyncing: false,
      lastSyncedAt: AT - 1000,
      pendingKeys: ['password'],
      error: new SessionError('unavailable', 'Service unavailable', 503, true),
      isOnline: true,
      isPersistent: true,
      isHydrated: true,
      version: 7,
      needsUpdate: false,
      setAside: [],
    },
    base: { version: 7, schemaVersion: 1, createdAt: '2026-11-21T03:00:00.000Z', updatedAt: '2026-11-21T03:59:00.000Z' },
    variables: [
      { key: 'password', value: SECRET, state: 'pending' },
      { key: 'profile', value: { name: SECRET, age: 42, tags: ['a'] }, state: 'confirmed' },
      { key: 'list', value: [SECRET, SECRET], state: 'queued' },
      { key: 'count', value: 12, state: 'confirmed' },
      { key: 'flag', value: true, state: 'sending' },
      { key: 'nothing', value: null, state: 'confirmed' },
      { key: 'gone', value: undefined, state: 'pending' },
      { key: 'email', value: `${SECRET}@example.com`, state: 'refused', error: refusal },
    ],
    queue: [
      {
        seq: 3,
        clientId: 'c-closed',
        keys: ['list', 'flag'],
        bytes: 120,
        attempts: 2,
        lastError: new SessionError('unavailable', 'down', 503, true),
        nextRetryAt: AT + 2300,
        sending: false,
      },
    ],
    localCopy: {
      storage: 'IndexedDB',
      persistent: true,
      lastWrite: { at: AT - 10, ok: true },
      leftByPages: [{ clientId: 'c-closed', patches: 1, takenOver: true }],
    },
    tab: { clientId: 'c-page', locks: true, holdsLock: true },
    feed: { connected: true, connects: 2, lastEventVersion: 7, lastEventAt: AT - 500, lastError: null },
    following: true,
    runs: [
      {
        runId: 'run-1',
        step: 'register',
        status: 'failed',
        input: { card: SECRET },
        progress: `${SECRET} 50%`,
        output: null,
        error: { code: 'step_failed', message: 'card declined' },
        startedAt: '2026-11-21T03:59:50.000Z',
        finishedAt: '2026-11-21T03:59:55.000Z',
        heartbeatAt: '2026-11-21T03:59:55.000Z',
        readVersion: 6,
        version: null,
        rev: 4,
      },
      {
        runId: 'run-2',
        step: 'ship',
        status: 'succeeded',
        input: null,
        progress: null,
        output: { label: SECRET },
        error: null,
        startedAt: '2026-11-21T03:59:56.000Z',
        finishedAt: '2026-11-21T03:59:57.000Z',
        heartbeatAt: '2026-11-21T03:59:57.000Z',
        readVersion: 6,
        version: 7,
        rev: 3,
      },
    ],
    faults: { remaining: 1, status: 503, requests: 'patches' },
    heldOffline: false,
  }
}

const events: InspectorEvent[] = [
  { at: AT - 900, type: 'write', key: 'password' },
  { at: AT - 800, type: 'send', seq: 3, keys: ['list', 'flag'], bytes: 120, keepalive: false },
  { at: AT - 700, type: 'injected', status: 503, url: '/api/session/session-abcdef12' },
  { at: AT - 600, type: 'failed', seq: 3, error: new SessionError('unavailable', 'down', 503, true), retryAt: AT + 2300 },
  { at: AT - 500, type: 'refused', seq: 2, error: new SessionError('bad_request', 'email is invalid', 400) },
  { at: AT - 400, type: 'offline' },
  { at: AT - 300, type: 'online' },
  { at: AT - 200, type: 'confirmed', seq: 1, version: 7 },
  { at: AT - 100, type: 'feed', connected: true, version: 7 },
  { at: AT - 50, type: 'saved', ok: true },
  { at: AT - 10, type: 'received', version: 7 },
]

describe('devtoolsReport', () => {
  it('leaves every value out unless asked: no secret anywhere in its JSON', () => {
    const report = devtoolsReport(inspection(), events, { values: false })
    const text = JSON.stringify(report)
    expect(text).not.toContain(SECRET)
    expect(text).not.toContain('hunter2')
    // Names stay: they are not values.
    expect(report.variables.map((variable) => variable.key)).toEqual([
      'password',
      'profile',
      'list',
      'count',
      'flag',
      'nothing',
      'gone',
      'email',
    ])
    expect(report.queue[0]!.keys).toEqual(['list', 'flag'])
    expect(report.status.pendingKeys).toEqual(['password'])
  })

  it('describes each value by its type and size', () => {
    const report = devtoolsReport(inspection(), events, { values: false })
    const byKey = Object.fromEntries(report.variables.map((variable) => [variable.key, variable]))
    expect(byKey.password).toEqual({ key: 'password', state: 'pending', value: { type: 'string', bytes: SECRET.length } })
    expect(byKey.profile!.value).toEqual({ type: 'object', keys: 3, bytes: JSON.stringify({ name: SECRET, age: 42, tags: ['a'] }).length })
    expect(byKey.list!.value).toEqual({ type: 'array', length: 2, bytes: JSON.stringify([SECRET, SECRET]).length })
    expect(byKey.count!.value).toEqual({ type: 'number' })
    expect(byKey.flag!.value).toEqual({ type: 'boolean' })
    expect(byKey.nothing!.value).toEqual({ type: 'null' })
    expect(byKey.gone).toEqual({ key: 'gone', state: 'pending', deleted: true })
    // An error's words may repeat a value (a schema's "was …"): left out too, its code and status kept.
    expect(byKey.email).toMatchObject({
      state: 'refused',
      error: { code: 'bad_request', message: expect.stringMatching(/^\(left out/), status: 400 },
    })
    expect(describeValue('é')).toEqual({ type: 'string', bytes: 2 }) // UTF-8 bytes, not characters
    expect(report.runs[0]).toMatchObject({
      step: 'register',
      status: 'failed',
      input: { type: 'object', keys: 1 },
      progress: { type: 'string' },
      output: null,
      error: { code: 'step_failed', message: expect.stringMatching(/^\(left out/) },
      startedAt: '2026-11-21T03:59:50.000Z',
      finishedAt: '2026-11-21T03:59:55.000Z',
    })
    expect(report.runs[1]).toMatchObject({ input: { type: 'null' }, output: { type: 'object', keys: 1 } })
  })

  it('keeps values when asked', () => {
    const report = devtoolsReport(inspection(), events, { values: true })
    expect(report.values).toBe(true)
    expect(JSON.stringify(report)).toContain(SECRET)
    expect(report.variables[0]!.value).toBe(SECRET)
    expect(report.runs[0]!.input).toEqual({ card: SECRET })
    expect(report.runs[0]!.error).toEqual({ code: 'step_failed', message: 'card declined' })
  })

  it('leaves out the words of errors, which may repeat a value, unless values are asked for', () => {
    const echoing = new SessionError('invalid_patch', `age: must be a number (was "${SECRET}")`, 400)
    const leaky: SessionInspection = {
      ...inspection(),
      status: { ...inspection().status, error: echoing },
      feed: { connected: false, connects: 1, lastEventVersion: null, lastEventAt: null, lastError: `bad event ${SECRET}` },
    }
    const leakyEvents: InspectorEvent[] = [{ at: AT, type: 'refused', seq: 1, error: echoing }]
    expect(JSON.stringify(devtoolsReport(leaky, leakyEvents, { values: false }))).not.toContain(SECRET)
    expect(JSON.stringify(devtoolsReport(leaky, leakyEvents, { values: true }))).toContain(SECRET)
  })

  it('is plain JSON: times as ISO strings, errors as code, message and status, a format to read it by', () => {
    const report = devtoolsReport(inspection(), events, { values: false })
    expect(JSON.parse(JSON.stringify(report))).toEqual(report)
    expect(report).toMatchObject({
      format: 'workflow-session-devtools-report',
      formatVersion: 1,
      at: '2026-11-21T04:00:00.000Z',
      values: false,
      sessionId: 'session-abcdef12',
      clientId: 'c-page',
      status: { lastSyncedAt: '2026-11-21T03:59:59.000Z', error: { code: 'unavailable', status: 503 } },
      base: { version: 7 },
      queue: [
        {
          seq: 3,
          clientId: 'c-closed',
          attempts: 2,
          lastError: { code: 'unavailable', status: 503 },
          nextRetryAt: '2026-11-21T04:00:02.300Z',
        },
      ],
      localCopy: {
        storage: 'IndexedDB',
        lastWrite: { at: '2026-11-21T03:59:59.990Z', ok: true },
        leftByPages: [{ clientId: 'c-closed', takenOver: true }],
      },
      tab: { clientId: 'c-page', holdsLock: true },
      feed: { connected: true, connects: 2, lastEventAt: '2026-11-21T03:59:59.500Z' },
      faults: { remaining: 1, status: 503 },
    })
    expect(report.events).toHaveLength(events.length)
    expect(report.events[0]).toEqual({ at: '2026-11-21T03:59:59.100Z', type: 'write', key: 'password' })
    expect(report.events[3]).toEqual({
      at: '2026-11-21T03:59:59.400Z',
      type: 'failed',
      seq: 3,
      error: { code: 'unavailable', message: expect.stringMatching(/^\(left out/), status: 503 },
      retryAt: '2026-11-21T04:00:02.300Z',
    })
    // Not a SessionError any more: nothing but the three fields (no stack, no retryable).
    expect(Object.keys(report.events[4]!.type === 'refused' ? report.events[4].error : {})).toEqual(['code', 'message', 'status'])
  })

  it('keeps the last 100 events, and tells an empty client without failing', () => {
    const many: InspectorEvent[] = Array.from({ length: 150 }, (_, index) => ({ at: AT + index, type: 'write', key: `k${index}` }))
    const empty: SessionInspection = {
      ...inspection(),
      status: { ...inspection().status, error: null, lastSyncedAt: null },
      base: null,
      variables: [],
      queue: [],
      localCopy: { storage: 'memory', persistent: false, lastWrite: null, leftByPages: null },
      feed: null,
      runs: [],
    }
    const report = devtoolsReport(empty, many, { values: false })
    expect(report.events).toHaveLength(100)
    expect(report.events[0]).toMatchObject({ key: 'k50' })
    expect(report).toMatchObject({ base: null, feed: null, runs: [], variables: [], status: { error: null, lastSyncedAt: null } })
  })
})

describe('devtoolsReport of a real client', () => {
  const clients: SessionClient[] = []
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((client) => client.stop()))
  })

  it('carries no secret a page typed, sent, or gave a run', async () => {
    const handler = createSessionHandler({
      store: memoryStore(),
      steps: {
        echo: ({ input, progress }) => {
          progress({ seen: input ?? null })
          return { output: { echoed: input ?? null }, variables: { fromStep: input ?? null } }
        },
      },
      onError: () => {},
    })
    const client = createSessionClient({
      endpoint: 'http://localhost/api/session',
      sessionId: 'devtools-report-1',
      storage: memoryLocalCopy(),
      locks: null,
      fetch: async (input, init) => handler(new Request(input, init)),
    })
    clients.push(client)
    const heard: InspectorEvent[] = []
    const inspector = inspectSession(client)
    const stop = inspector.subscribe((event) => heard.push(event))
    await client.start()
    client.set('password', SECRET)
    client.set('wf:signup:v:card', { number: SECRET })
    await client.flush()
    await client.run('echo', SECRET)
    client.set('draft', `${SECRET}!`) // pending, not sent
    stop()

    const inspected = inspector.inspect()
    expect(JSON.stringify(inspected.variables)).toContain(SECRET) // the inspection has it…
    const report = devtoolsReport(inspected, heard, { values: false })
    expect(JSON.stringify(report)).not.toContain(SECRET) // …the report does not
    expect(report.variables.map((variable) => variable.key)).toEqual(
      expect.arrayContaining(['password', 'wf:signup:v:card', 'fromStep', 'draft']),
    )
    expect(report.events.map((event) => event.type)).toEqual(expect.arrayContaining(['write', 'send', 'confirmed']))
    expect(report.runs).toHaveLength(1)
    expect(report.runs[0]).toMatchObject({
      step: 'echo',
      status: 'succeeded',
      input: { type: 'string' },
      output: { type: 'object', keys: 1 },
    })
    expect(JSON.stringify(devtoolsReport(inspected, heard, { values: true }))).toContain(SECRET)
  })
})
