import type { JsonValue, SessionSnapshot, Variables } from '../../shared/protocol.js'
import { isSessionId } from '../../shared/rules.js'
import { scopeWorkflow } from '../../shared/workflow.js'
import { createDraft } from '../draft.js'
import { SessionProtocolError } from '../errors.js'
import { assertValidChange, mergeSession, toSessionChange, type SessionChange } from '../merge.js'
import type { AccessOptions, ApplyResult, Caller, ListOptions, SessionStore, StoreBackend, StoreOptions } from './types.js'

/**
 * Turns stored values into callers' values and back, one variable at a time (encryption at
 * rest). Values the merge writes itself (a workflow's `at` stamp) are stored as they are, so
 * `decode` must pass through what it did not encode.
 */
export interface ValueCodec {
  encode(sessionId: string, name: string, value: JsonValue): Promise<JsonValue>
  decode(sessionId: string, name: string, stored: JsonValue): Promise<JsonValue>
}

export interface DefineStoreOptions extends StoreOptions {
  codec?: ValueCodec
}

/** The backend under a store made by `defineStore`, for wrappers that add a codec. */
const BACKEND = Symbol('workflow-session.backend')
type DefinedStore = SessionStore & { [BACKEND]?: StoreBackend }

/** How often `updateWorkflow` re-runs its edit when other writes keep landing first. */
const MAX_EDIT_ATTEMPTS = 20

/**
 * Whether `caller` may reach `snapshot`: trusted server code (no caller) reaches every session,
 * a request's caller its own and those without an owner. The one owner rule of the server.
 */
export function mayReach(snapshot: SessionSnapshot, caller: Caller | undefined): boolean {
  return caller === undefined || snapshot.userId === undefined || snapshot.userId === caller.userId
}

/**
 * Builds a {@link SessionStore} on a storage backend: every store method checks the session id,
 * copies what it is given, applies the owner rule, merges with `mergeSession` inside the
 * backend's atomic step, and runs values through the codec. Backends differ only in how they
 * store a record atomically.
 *
 * @example
 * const store = defineStore({ read, update, list, ids, purgeExpired, close })
 */
export function defineStore(backend: StoreBackend, options: DefineStoreOptions = {}): SessionStore {
  const { codec } = options
  let timer: ReturnType<typeof setInterval> | undefined
  if (options.ttlMs !== undefined) {
    timer = setInterval(() => void backend.purgeExpired().catch(() => {}), Math.min(options.ttlMs, 10 * 60_000))
    timer.unref?.()
  }

  async function decode(snapshot: SessionSnapshot): Promise<SessionSnapshot> {
    if (!codec) return snapshot
    const variables: Variables = {}
    for (const [name, value] of Object.entries(snapshot.variables)) variables[name] = await codec.decode(snapshot.sessionId, name, value)
    return { ...snapshot, variables }
  }

  /** The caller's change, checked and copied, its values encoded: nothing of the caller's is kept. */
  async function prepare(sessionId: string, input: SessionChange): Promise<SessionChange> {
    const change = toSessionChange(input)
    assertValidChange(change)
    if (change.deleted) change.deleted = [...change.deleted]
    if (change.variables) {
      const variables: Variables = structuredClone(change.variables)
      if (codec) for (const [name, value] of Object.entries(variables)) variables[name] = await codec.encode(sessionId, name, value)
      change.variables = variables
    }
    return change
  }

  /** Merges a prepared change; with `expectVersion`, only onto that version (else null). */
  async function merge(sessionId: string, change: SessionChange, caller: Caller | undefined, maxBytes: number | undefined, expectVersion?: number): Promise<ApplyResult | null> {
    const owner = caller?.userId ?? undefined
    const result = await backend.update(sessionId, (current) => {
      if (current && !mayReach(current.snapshot, caller)) throw noSuchSession()
      if (expectVersion !== undefined && (current?.snapshot.version ?? 0) !== expectVersion) return { result: null }
      const { record, applied } = mergeSession(current, sessionId, change, new Date(), { ...(maxBytes !== undefined && { maxBytes }), ...(owner !== undefined && { owner }) })
      return { ...(applied && { write: record }), result: { snapshot: record.snapshot, applied } }
    })
    return result && { snapshot: await decode(result.snapshot), applied: result.applied }
  }

  const store: DefinedStore = {
    [BACKEND]: backend,
    async get(sessionId, access = {}) {
      checkSessionId(sessionId)
      const caller = checkCaller(access)
      const record = await backend.read(sessionId)
      return record && mayReach(record.snapshot, caller) ? decode(record.snapshot) : null
    },
    async apply(sessionId, change, applyOptions = {}) {
      checkSessionId(sessionId)
      const caller = checkCaller(applyOptions)
      return (await merge(sessionId, await prepare(sessionId, change), caller, applyOptions.maxBytes))!
    },
    async create(sessionId, { variables = {}, workflowId, userId, maxBytes } = {}) {
      checkSessionId(sessionId)
      if (userId !== undefined && (typeof userId !== 'string' || userId === '')) throw new TypeError('create: userId must be a non-empty string')
      const change = await prepare(sessionId, { variables, ...(workflowId !== undefined && { workflowId }) })
      const snapshot = await backend.update(sessionId, (current) => {
        if (current) throw new SessionProtocolError('exists', `A session with id "${sessionId}" exists already`)
        const merged = mergeSession(null, sessionId, change, new Date(), { ...(maxBytes !== undefined && { maxBytes }), ...(userId !== undefined && { owner: userId }) })
        // Creating is a change of its own, even with no variables: the session is there, version 1.
        const record = merged.applied ? merged.record : { ...merged.record, snapshot: { ...merged.record.snapshot, version: 1 } }
        return { write: record, result: record.snapshot }
      })
      return decode(snapshot)
    },
    async delete(sessionId, access = {}) {
      checkSessionId(sessionId)
      const caller = checkCaller(access)
      return backend.update(sessionId, (current) => (current && mayReach(current.snapshot, caller) ? { write: null, result: true } : { result: false }))
    },
    list: (listOptions = {}) => backend.list(checkList(listOptions)),
    ids: () => backend.ids(),
    purgeExpired: () => backend.purgeExpired(),
    async getState<T>(sessionId: string, key: string) {
      const snapshot = await store.get(sessionId)
      return snapshot && Object.hasOwn(snapshot.variables, key) ? (snapshot.variables[key] as T) : undefined
    },
    async setState(sessionId, key, value) {
      return (await store.apply(sessionId, { variables: { [key]: value as JsonValue } })).snapshot
    },
    async getWorkflow(sessionId, workflowId) {
      const snapshot = await store.get(sessionId)
      if (!snapshot) return null
      const readOnly = () => {
        throw new Error('getWorkflow reads only: change a workflow with updateWorkflow()')
      }
      const variables = snapshot.variables
      const workflow = scopeWorkflow(
        { get: (name) => (Object.hasOwn(variables, name) ? variables[name] : undefined), set: readOnly, delete: readOnly, names: () => Object.keys(variables) },
        workflowId,
      )
      const { step, flow, stack, params, lastModified } = workflow
      return { data: workflow.getAll() as Record<string, JsonValue>, step, flow, stack, params, lastModified }
    },
    async updateWorkflow(sessionId, workflowId, edit) {
      checkSessionId(sessionId)
      for (let attempt = 1; attempt <= MAX_EDIT_ATTEMPTS; attempt++) {
        const before = await store.get(sessionId)
        const draft = createDraft(before?.variables ?? {})
        await edit(scopeWorkflow(draft.access, workflowId))
        const merged = await merge(sessionId, await prepare(sessionId, draft.changes()), undefined, undefined, before?.version ?? 0)
        if (merged) return merged.snapshot
      }
      throw new Error(`updateWorkflow: session "${sessionId}" changed under each of ${MAX_EDIT_ATTEMPTS} attempts; nothing was written`)
    },
    async close() {
      if (timer) clearInterval(timer)
      await backend.close()
    },
  }
  if (backend.watch) store.watch = (onChange, onReconnect) => backend.watch!(onChange, onReconnect)
  return store
}

/** The same store with values run through `codec` (for `encryptedStore`); closing it closes `store`. */
export function withCodec(store: SessionStore, codec: ValueCodec): SessionStore {
  const backend = (store as DefinedStore)[BACKEND]
  if (!backend) throw new TypeError('This store was not made by workflow-session (memoryStore, fileStore, sqliteStore, postgresStore, or defineStore)')
  return { ...defineStore(backend, { codec }), close: () => store.close() }
}

function noSuchSession(): SessionProtocolError {
  return new SessionProtocolError('not_found', 'No such session')
}

function checkSessionId(sessionId: unknown): asserts sessionId is string {
  if (!isSessionId(sessionId)) {
    const shown = typeof sessionId === 'string' ? JSON.stringify(sessionId.slice(0, 40)) : typeof sessionId
    throw new SessionProtocolError('invalid_session_id', `${shown} is not a session id: 8 to 128 characters of A-Z a-z 0-9 _ -`)
  }
}

function checkCaller({ caller }: AccessOptions): Caller | undefined {
  if (caller === undefined) return undefined
  const userId = (caller as Partial<Caller> | null)?.userId
  if (userId === null || (typeof userId === 'string' && userId !== '')) return caller
  throw new TypeError('caller must be { userId: string } for a signed-in user or { userId: null } for an anonymous one')
}

function checkList({ userId, limit = 50, offset = 0 }: ListOptions): Required<Pick<ListOptions, 'limit' | 'offset'>> & Pick<ListOptions, 'userId'> {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000) throw new RangeError(`list: limit must be an integer from 1 to 1000, got ${limit}`)
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`list: offset must be a whole number, got ${offset}`)
  if (userId !== undefined && typeof userId !== 'string') throw new TypeError('list: userId must be a string')
  return { limit, offset, ...(userId !== undefined && { userId }) }
}
