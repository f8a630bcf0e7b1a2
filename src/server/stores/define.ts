import type { SessionBase } from '../../shared/delta.js'
import { changesBetween, MigrationError, SET_ASIDE_KEY } from '../../shared/migrations.js'
import type { JsonValue, RunRecord, SessionSnapshot, Variables } from '../../shared/protocol.js'
import { isSessionId } from '../../shared/rules.js'
import { scopeWorkflow } from '../../shared/workflow.js'
import { createDraft } from '../draft.js'
import { SchemaMismatchError, SessionProtocolError } from '../errors.js'
import {
  type Caller,
  mayReach,
  type MergePlan,
  namesNeeded,
  planMerge,
  type PreparedChange,
  type SessionChange,
  type SessionHead,
  validChange,
} from '../merge.js'
import { deltaText, entryOf, type Listed, namesSince, snapshotText, type StoredSession, valueOfEntry } from './stored.js'
import type {
  AccessOptions,
  ApplyOptions,
  ApplyResult,
  CurrentSession,
  ListOptions,
  RunEnd,
  RunFinished,
  RunStart,
  RunStarted,
  SessionAnswer,
  SessionStore,
  StoreBackend,
  StoredRun,
  StoreOptions,
  Write,
} from './types.js'

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

/** The backend under a store made by `defineStore`, for `encryptedStore`, which adds a codec to it. */
const BACKEND = Symbol('workflow-session.backend')

type DefinedStore = SessionStore & { [BACKEND]?: { backend: StoreBackend; options: StoreOptions } }

/** How often `updateWorkflow` re-runs its edit when other writes keep landing first. */
const MAX_EDIT_ATTEMPTS = 20

/** What `view` hands back: the session after an update, ready to answer with. */
interface After {
  head: SessionHead
  /** The snapshot as text (no codec), or its entries to decode (a codec is async: copied first). */
  text?: string
  entries?: Array<[string, string]>
  /** For a caller holding version `base`: only the entries set since then (to decode with a codec) and the names deleted. */
  delta?: { base: number; entries: Array<[string, string]>; deleted: string[] }
}

/**
 * How a merge ended: merged (applied, or a replay or empty change answered as it is), not tried
 * on a moved version (`conflict`), or not tried on a session stored at an older schema version
 * without its migration (`stale`: migrate it, then merge again).
 */
type MergeOutcome = { kind: 'merged'; after: After; applied: boolean; migrated: boolean } | { kind: 'conflict' } | { kind: 'stale' }

/** A session's migration to the store's schema version, read at `version`: what it changes, ready to merge. */
interface PendingMigration {
  version: number
  createdAt: string
  change: PreparedChange
  /** The values the app's schema refused once migrated (set aside, and reported once written). */
  setAside: Array<{ name: string; problem: string }>
}

/** How often a read or write migrates a session and tries again when other writes keep landing first. */
const MAX_MIGRATE_ATTEMPTS = 20

/**
 * Builds a {@link SessionStore} on a storage backend: every store method checks the session id,
 * copies what it is given (values become JSON text), applies the owner rule, plans the merge
 * with `planMerge` inside the backend's atomic step, and runs values through the codec.
 * Backends differ only in how they store a head and variables atomically.
 *
 * This file is where to read what happens to a patch, top to bottom, until the store commits:
 *
 * 1. the Node adapter (`serve()` in `node.ts`) makes a `Request`; the handler's route table picks
 *    `session.POST` (`handler.ts`);
 * 2. at the edge, once: the body is read within the size limit (`readJsonBody`), checked by the
 *    protocol's rules (`validChange`, which marks it checked), counted against `maxKeysPerPatch`,
 *    and given to the app's schema; then `store.apply`, here:
 * 3. `apply` checks the session id and the caller (a store is a public API for server code too);
 * 4. `prepare` writes the values as JSON text through the codec (a change the edge checked is not checked again);
 * 5. `merge` runs in the backend's one atomic step (`backend.update`, e.g. a savepoint in the
 *    SQLite store's group commit): `decide` applies the owner rule and `planMerge` (`merge.ts`)
 *    says what to write (a replayed seq is answered as it is, the size limit, the workflow
 *    stamp); the backend writes it and commits; `capture` takes the session after;
 * 6. `applyResult` is the answer, which the handler announces to the change feed and sends as it
 *    is: for a client that stated the version it holds (`Session-Base`), the delta since then
 *    (`capture` took only the variables the change log names since that version: O(change)),
 *    else the snapshot's JSON text. How the handler and the feed answer is in `answers.ts`.
 *
 * @example
 * const store = defineStore({ read, update, list, ids, purgeExpired, close })
 */
export function defineStore(backend: StoreBackend, options: DefineStoreOptions = {}): SessionStore {
  const { codec, migrations } = options
  const onError = options.onError ?? ((error: unknown) => console.error('[workflow-session]', error))
  const schemaVersion = migrations?.version ?? 1
  let timer: ReturnType<typeof setInterval> | undefined
  if (options.ttlMs !== undefined) {
    timer = setInterval(() => void backend.purgeExpired().catch(() => {}), Math.min(options.ttlMs, 10 * 60_000))
    ;(timer as { unref?: () => void }).unref?.() // a number, without unref, outside Node
  }

  /** 3. A patch (checked at the edge when it came in a request): the session id and the caller are checked, then it is prepared, merged and answered. */
  async function apply(sessionId: string, change: SessionChange, applyOptions: ApplyOptions = {}): Promise<ApplyResult> {
    checkSessionId(sessionId)
    const caller = checkCaller(applyOptions)
    const base = checkBase(applyOptions.base)
    const limits = {
      ...(caller && { caller }),
      ...(applyOptions.maxBytes !== undefined && { maxBytes: applyOptions.maxBytes }),
      ...(base && { base }),
    }
    // A patch written in an older schema version moves to the store's first (or is refused, after the owner check).
    const { moved, refused } = movedToSchema(change, applyOptions.schemaVersion)
    const prepared = await prepare(sessionId, moved)
    let migration: PendingMigration | undefined
    for (let attempt = 1; attempt <= MAX_MIGRATE_ATTEMPTS; attempt++) {
      const outcome = await merge(sessionId, prepared, { ...limits, ...(refused && { refused }), ...(migration && { migration }) })
      // A session stored at an older schema version: its migration and the patch are one write.
      if (outcome.kind === 'merged') {
        if (outcome.migrated) reportSetAside(sessionId, migration!)
        return applyResult(outcome.after, outcome.applied, base !== undefined)
      }
      migration = (await migrationOf(sessionId)) ?? undefined
    }
    throw new Error(`Session "${sessionId}" changed under each of ${MAX_MIGRATE_ATTEMPTS} attempts to migrate it; nothing was written`)
  }

  /**
   * A change written in schema version `from` (default: the store's), moved to the store's by
   * its migrations; `refused` says why it cannot be (a newer version, a function step between),
   * which the merge answers with `schema_mismatch` once the owner is checked.
   */
  function movedToSchema(change: SessionChange, from: number | undefined): { moved: SessionChange; refused?: string } {
    if (from === undefined || from === schemaVersion) return { moved: change }
    if (!Number.isSafeInteger(from) || from < 1) throw new TypeError(`schemaVersion must be a whole number from 1, got ${String(from)}`)
    if (from > schemaVersion || !migrations)
      return { moved: change, refused: `The change is in schema version ${from}, newer than this server's (${schemaVersion})` }
    try {
      const moved = migrations.migratePatch({ variables: change.variables ?? {}, deleted: change.deleted ?? [] }, from)
      return { moved: { ...change, ...moved } }
    } catch (error) {
      if (!(error instanceof MigrationError)) throw error
      return { moved: change, refused: `The change is in schema version ${from}, which this server cannot move: ${error.message}` }
    }
  }

  /** The schema version a session is stored at (0, written before any, reads as 1). */
  const storedSchema = (head: SessionHead) => Math.max(head.schemaVersion ?? 0, 1)
  /** Whether the session is stored at an older schema version than the store's: it is migrated before anything reads or writes it. */
  const isStale = (head: SessionHead) => storedSchema(head) < schemaVersion

  /** Refuses a write to a session stored at a newer schema version (newer code wrote it): this code must not guess at its shape. */
  function checkNotNewer(head: SessionHead): void {
    if (storedSchema(head) > schemaVersion)
      throw new SchemaMismatchError(
        `The session is stored in schema version ${storedSchema(head)}, newer than this server's (${schemaVersion})`,
        storedSchema(head),
      )
  }

  /**
   * The migration of a session stored at an older schema version: its variables read (and
   * decoded), migrated, and what changed prepared as a change to merge. Null when the session is
   * missing or current.
   */
  async function migrationOf(sessionId: string): Promise<PendingMigration | null> {
    const seen = await backend.read(sessionId, (stored) =>
      stored && isStale(stored.head) ? { head: stored.head, entries: [...stored.entries] } : null,
    )
    if (!seen || !migrations) return null
    const variables: Variables = {}
    for (const [name, entry] of seen.entries) {
      const json = JSON.parse(valueOfEntry(name, entry)) as JsonValue
      variables[name] = codec ? await codec.decode(sessionId, name, json) : json
    }
    const migrated = migrations.migrate(variables, storedSchema(seen.head))
    const changes = changesBetween(variables, migrated.variables)
    try {
      const change = { ...(await prepare(sessionId, changes)), stamped: [] }
      return { version: seen.head.version, createdAt: seen.head.createdAt, change, setAside: migrated.setAside }
    } catch (error) {
      // The app's migration made variables the protocol does not allow: a server error, not the caller's.
      throw new Error(`Migrating session "${sessionId}" to schema version ${schemaVersion} made variables that cannot be stored`, {
        cause: error,
      })
    }
  }

  /** Tells `onError` of the values a migration this store wrote set aside (nothing is dropped without a word). */
  function reportSetAside(sessionId: string, migration: PendingMigration): void {
    if (migration.setAside.length > 0) onError(new SetAsideError(sessionId, schemaVersion, migration.setAside), { sessionId })
  }

  /** Migrates the session now if it is stored at an older schema version; true when this call did. */
  async function migrateStored(sessionId: string): Promise<boolean> {
    if (!migrations) return false
    for (let attempt = 1; attempt <= MAX_MIGRATE_ATTEMPTS; attempt++) {
      const migration = await migrationOf(sessionId)
      if (!migration) return false
      const outcome = await merge(sessionId, { sets: new Map(), deletes: [] }, { migration, maxBytes: Number.MAX_SAFE_INTEGER })
      if (outcome.kind === 'merged') {
        if (outcome.migrated) reportSetAside(sessionId, migration)
        return outcome.migrated
      }
    }
    throw new Error(`Session "${sessionId}" changed under each of ${MAX_MIGRATE_ATTEMPTS} attempts to migrate it; nothing was written`)
  }

  /**
   * Reads the session as `use` takes it, after migrating it when it is stored at an older schema
   * version — unless `caller` may not reach it (it is not theirs to answer, nor to make write).
   */
  async function readCurrent<T>(sessionId: string, use: (stored: StoredSession | null) => T, caller?: Caller): Promise<T> {
    const mustMigrate = (stored: StoredSession | null) => stored !== null && isStale(stored.head) && mayReach(stored.head, caller)
    for (let attempt = 1; attempt <= MAX_MIGRATE_ATTEMPTS; attempt++) {
      const read = await backend.read(sessionId, (stored) => (mustMigrate(stored) ? STALE : { value: use(stored) }))
      if (read !== STALE) return read.value
      await migrateStored(sessionId)
    }
    throw new Error(`Session "${sessionId}" changed under each of ${MAX_MIGRATE_ATTEMPTS} attempts to migrate it`)
  }

  /**
   * 4. The caller's change, its values written as JSON text (encoded): nothing of the caller's is
   * kept. The store is a public API for server code too, so it checks every change here, once,
   * unless the handler did already at the edge (a change from `validChange` is frozen and known).
   */
  async function prepare(sessionId: string, input: SessionChange): Promise<PreparedChange> {
    const change = validChange(input)
    const sets = new Map<string, string>()
    for (const [name, value] of Object.entries(change.variables ?? {})) {
      sets.set(name, JSON.stringify(codec ? await codec.encode(sessionId, name, value) : value))
    }
    const prepared: PreparedChange = { sets, deletes: [...(change.deleted ?? [])] }
    if (change.clientId !== undefined) prepared.clientId = change.clientId
    if (change.seq !== undefined) prepared.seq = change.seq
    if (change.workflowId !== undefined) prepared.workflowId = change.workflowId
    return prepared
  }

  /**
   * 5. Merges a prepared change in the backend's one atomic step: `decide` applies the owner rule
   * and `planMerge`, the backend writes and commits, `view` captures the session after. With `expectVersion`, only onto that version (else `conflict`).
   * `create`: only where no session is (else `exists`), and as version 1 even when empty.
   */
  async function merge(
    sessionId: string,
    change: PreparedChange,
    {
      caller,
      maxBytes,
      owner,
      expectVersion,
      create = false,
      base,
      refused,
      migration,
    }: {
      caller?: Caller
      maxBytes?: number
      owner?: string
      expectVersion?: number
      create?: boolean
      base?: SessionBase
      /** Why the change's schema version cannot be taken: `schema_mismatch`, once the owner is checked. */
      refused?: string
      /** The session's migration, read at its `version`: written with the change, as one version. */
      migration?: PendingMigration
    },
  ): Promise<MergeOutcome> {
    // What decide found, handed out by view: both run in the backend's one atomic step, in turn.
    let plan: MergePlan | null = null
    let stale = false
    let migrated = false
    const decide = (current: CurrentSession | null): Write | undefined => {
      if (create && current) throw new SessionProtocolError('exists', `A session with id "${sessionId}" exists already`)
      if (current && !mayReach(current.head, caller)) throw new SessionProtocolError('not_found', 'No such session')
      if (current) checkNotNewer(current.head)
      if (refused) throw new SchemaMismatchError(refused, schemaVersion)
      if (expectVersion !== undefined && (current?.head.version ?? 0) !== expectVersion) return undefined
      // Stored at an older schema version: merged only with its migration, read at this very version.
      const migrating = current !== null && isStale(current.head)
      if (migrating && (migration?.version !== current.head.version || migration.createdAt !== current.head.createdAt)) {
        stale = true
        return undefined
      }
      // A new session is owned by the owner given (create), else by the calling user.
      const newOwner = owner ?? caller?.userId ?? undefined
      const limits = { ...(maxBytes !== undefined && { maxBytes }), ...(newOwner !== undefined && { owner: newOwner }) }
      const now = new Date()
      const sizeOf = (name: string) => current?.sizeOf(name)
      plan = planMerge(current?.head ?? null, sizeOf, sessionId, migrating ? withMigration(migration!.change, change) : change, now, limits)
      if (migrating && (!plan.applied || (change.sets.size === 0 && change.deletes.length === 0))) {
        // The migration alone (no patch, or one replayed by its seq): a write of its own, even when
        // nothing moved, that changes no one's work. What was stored moves whatever its size, and the
        // session keeps its `updatedAt` (its place in listings, its time to live).
        const alone = planMerge(current.head, sizeOf, sessionId, migration!.change, now, { maxBytes: Number.MAX_SAFE_INTEGER })
        plan = { ...alone, head: { ...alone.head, version: current.head.version + 1, updatedAt: current.head.updatedAt }, applied: true }
      }
      // Creating is a change of its own, even with no variables: the session is there, version 1.
      if (create && !plan.applied) plan = { ...plan, head: { ...plan.head, version: 1 }, applied: true }
      // A new session, and a migrated one, are at the store's schema version.
      if (!current || migrating) plan = { ...plan, head: { ...plan.head, schemaVersion } }
      migrated = migrating
      return plan.applied ? { head: plan.head, sets: plan.sets, deletes: plan.deletes } : undefined
    }
    const view = (stored: StoredSession | null): MergeOutcome => {
      if (stale) return { kind: 'stale' }
      if (!plan) return { kind: 'conflict' }
      // Not applied and no session: the version-0 snapshot the protocol answers, created nowhere.
      const after = capture(stored, base) ?? { head: plan.head, text: snapshotText(plan.head, []), entries: [] }
      return { kind: 'merged', after, applied: plan.applied, migrated }
    }
    // With a migration, the names it moves are named too: a backend hands over the sizes of the names asked only.
    return backend.update(sessionId, namesNeeded(migration ? withMigration(migration.change, change) : change), decide, view)
  }

  /** A merge that cannot meet a conflict (no expected version, no session to migrate): its result. */
  function merged(outcome: MergeOutcome): { after: After; applied: boolean } {
    if (outcome.kind !== 'merged') throw new Error(`A merge without an expected version met a ${outcome.kind} session`)
    return outcome
  }

  /**
   * 6. A store's answer to `apply`: the snapshot's text (which the handler sends as it is), parsed
   * into `snapshot` only if someone reads it; asked with a base, the answer for it (a delta when
   * one could be made, which is all there is then: no snapshot).
   */
  async function applyResult(after: After, applied: boolean, withBase = false): Promise<ApplyResult> {
    if (withBase) {
      const answer = await answerOf(after)
      return {
        applied,
        answer,
        get snapshot(): SessionSnapshot {
          if (answer.delta) throw new TypeError('apply(…, { base }) answered a delta: read `answer`, not `snapshot`')
          return JSON.parse(answer.json) as SessionSnapshot
        },
      }
    }
    const text = await textOf(after)
    let snapshot: SessionSnapshot | undefined
    return {
      applied,
      // `snapshot` before `json`: once the snapshot was read (by a wrapper that spreads this
      // result, or changes the snapshot in place), the text may no longer be what is answered,
      // so `json` is gone and the handler serializes the snapshot.
      get snapshot() {
        return (snapshot ??= JSON.parse(text) as SessionSnapshot)
      },
      get json() {
        return snapshot === undefined ? text : undefined
      },
    }
  }

  /**
   * The session after a read or write, taken synchronously (the backend's session may change
   * after): for a caller holding `base`, only what changed since then when the change log reaches
   * back that far (O(change)), else the whole session.
   */
  function capture(stored: StoredSession | null, base?: SessionBase): After | null {
    if (!stored) return null
    // A caller at the current version needs nothing, whether or not the backend keeps a change log.
    const names =
      base &&
      base.createdAt === stored.head.createdAt &&
      base.version <= stored.head.version &&
      (base.version === stored.head.version ? new Set<string>() : namesSince(stored.log, base.version))
    // A delta naming more variables than the session has is no smaller than the snapshot.
    if (base && names && names.size <= stored.entries.size) {
      const entries: Array<[string, string]> = []
      const deleted: string[] = []
      for (const name of names) {
        const entry = stored.entries.get(name)
        if (entry === undefined) deleted.push(name)
        else entries.push([name, entry])
      }
      return { head: stored.head, delta: { base: base.version, entries, deleted } }
    }
    return codec
      ? { head: stored.head, entries: [...stored.entries] }
      : { head: stored.head, text: snapshotText(stored.head, stored.entries.values()) }
  }

  /** The answer for a caller that gave its base: the delta's text when `after` is one, else the snapshot's. */
  async function answerOf(after: After): Promise<SessionAnswer> {
    const { head, delta } = after
    const answer = { version: head.version, createdAt: head.createdAt }
    if (!delta) return { ...answer, json: await textOf(after), delta: false, current: false }
    const entries = codec ? await decodedEntries(head.sessionId, delta.entries) : delta.entries.map(([, entry]) => entry)
    const json = deltaText(head, delta.base, entries, delta.deleted)
    return { ...answer, json, delta: true, current: delta.base === head.version }
  }

  /** The entries' values run through the codec: each entry as the caller sees it. */
  async function decodedEntries(sessionId: string, entries: Array<[string, string]>): Promise<string[]> {
    const decoded: string[] = []
    for (const [name, entry] of entries) {
      const value = await codec!.decode(sessionId, name, JSON.parse(valueOfEntry(name, entry)) as JsonValue)
      decoded.push(entryOf(name, JSON.stringify(value)))
    }
    return decoded
  }

  async function textOf(after: After): Promise<string> {
    return after.text ?? snapshotText(after.head, await decodedEntries(after.head.sessionId, after.entries!))
  }

  async function objectOf(after: After): Promise<SessionSnapshot> {
    return JSON.parse(await textOf(after)) as SessionSnapshot
  }

  // Runs: each change of a run record is one atomic step of its session (backend.update with the
  // run's id), so a start is once per id, and an end is once per run with its changes merged in it.
  const lostAfterMs = options.runLostAfterMs ?? 30_000

  /** The record as the caller sees it (values decoded). */
  async function runOf(sessionId: string, stored: StoredRun): Promise<RunRecord> {
    const record = JSON.parse(stored.record) as RunRecord
    if (!codec) return record
    const decode = async (field: 'input' | 'progress' | 'output') =>
      record[field] === null ? null : codec.decode(sessionId, `run:${record.runId}:${field}`, record[field])
    return { ...record, input: await decode('input'), progress: await decode('progress'), output: await decode('output') }
  }

  const encodeRunValue = async (sessionId: string, runId: string, field: string, value: JsonValue | undefined) =>
    value === undefined || value === null ? null : codec ? codec.encode(sessionId, `run:${runId}:${field}`, value) : value

  const stale = (run: StoredRun, now: number) => run.status === 'running' && now - run.heartbeatAt > lostAfterMs

  /** The record ended as `end` says, written at `now` (its changes are the caller's). */
  function ended(stored: StoredRun, status: RunRecord['status'], now: Date, fields: Partial<RunRecord>): StoredRun {
    const record = JSON.parse(stored.record) as RunRecord
    return storedRun({ ...record, ...fields, status, finishedAt: now.toISOString(), heartbeatAt: now.toISOString(), rev: record.rev + 1 })
  }

  const lostRun = (stored: StoredRun, now: Date) =>
    ended(stored, 'lost', now, { error: { code: 'lost', message: 'The server running the step stopped answering' } })

  async function startRun(sessionId: string, start: RunStart, runOptions: ApplyOptions = {}): Promise<RunStarted> {
    checkSessionId(sessionId)
    for (let attempt = 1; attempt <= MAX_MIGRATE_ATTEMPTS; attempt++) {
      const started = await startRunOnce(sessionId, start, runOptions)
      if (started) return started
      // Stored at an older schema version: the step must read the migrated variables.
      await migrateStored(sessionId)
    }
    throw new Error(`Session "${sessionId}" changed under each of ${MAX_MIGRATE_ATTEMPTS} attempts to migrate it; no run was started`)
  }

  /** A run start in one atomic step; null, with nothing written, when the session must be migrated first. */
  async function startRunOnce(sessionId: string, start: RunStart, runOptions: ApplyOptions): Promise<RunStarted | null> {
    const caller = checkCaller(runOptions)
    const input = await encodeRunValue(sessionId, start.runId, 'input', start.input)
    // What decide found or made, read after the atomic step.
    const outcome: { answer?: StoredRun; made?: StoredRun; stale?: boolean } = {}
    const after = await backend.update(
      sessionId,
      [],
      (current, runs) => {
        if (current && !mayReach(current.head, caller)) throw new SessionProtocolError('not_found', 'No such session')
        if (current) checkNotNewer(current.head)
        // A step is the server's code: it reads and writes the server's shape, so the caller must be at it.
        const from = runOptions.schemaVersion ?? schemaVersion
        if (from !== schemaVersion)
          throw new SchemaMismatchError(`The run is asked in schema version ${from}; this server's is ${schemaVersion}`, schemaVersion)
        if (current && isStale(current.head)) {
          outcome.stale = true
          return undefined
        }
        const now = new Date()
        const lost = runs.running.filter((run) => stale(run, now.getTime())).map((run) => lostRun(run, now))
        let answer =
          runs.run?.status === 'running' && stale(runs.run, now.getTime()) ? lost.find((run) => run.runId === start.runId) : runs.run
        const same = runs.running.find((run) => run.step === start.step && !stale(run, now.getTime()))
        if (!answer && same) {
          if (start.concurrentRuns === 'refuse')
            throw new SessionProtocolError('run_in_progress', `A run of step "${start.step}" is running in this session`)
          answer = same
        }
        if (answer) {
          outcome.answer = answer
          return lost.length > 0 ? { runs: lost } : undefined
        }
        // A missing session is made first, as a patch would make it: the run needs a session to belong to.
        const owner = caller?.userId ?? undefined
        const head = current?.head ?? {
          ...planMerge(null, () => undefined, sessionId, { sets: new Map(), deletes: [] }, now, owner === undefined ? {} : { owner }).head,
          version: 1,
          schemaVersion,
        }
        const at = now.toISOString()
        const made = (outcome.made = storedRun({
          runId: start.runId,
          step: start.step,
          status: 'running',
          input,
          progress: null,
          output: null,
          error: null,
          startedAt: at,
          finishedAt: null,
          heartbeatAt: at,
          readVersion: head.version,
          version: null,
          rev: 1,
        }))
        return { ...(!current && { head }), runs: [made, ...lost] }
      },
      capture,
      start.runId,
    )
    if (outcome.stale) return null
    if (outcome.made && after)
      return { run: await runOf(sessionId, outcome.made), created: true, variables: (await objectOf(after)).variables }
    return { run: await runOf(sessionId, outcome.answer!), created: false, variables: null }
  }

  async function finishRun(sessionId: string, runId: string, end: RunEnd, runOptions: ApplyOptions = {}): Promise<RunFinished | null> {
    checkSessionId(sessionId)
    const caller = checkCaller(runOptions)
    const change = end.status === 'succeeded' && end.change ? await prepare(sessionId, end.change) : null
    // The step's changes are in the store's schema version: merged onto the session migrated to it.
    if (change) await migrateStored(sessionId)
    const output = end.status === 'succeeded' ? await encodeRunValue(sessionId, runId, 'output', end.output) : null
    // What decide found and did, read after the atomic step.
    const outcome: { found?: StoredRun; finished: boolean; applied: boolean } = { finished: false, applied: false }
    const after = await backend.update(
      sessionId,
      change ? namesNeeded(change) : [],
      (current, runs): Write | undefined => {
        const found = runs.run
        if (!found || (current && !mayReach(current.head, caller))) return undefined
        outcome.found = found
        if (found.status !== 'running') return undefined
        const now = new Date()
        outcome.finished = true
        if (end.status !== 'succeeded') {
          const code = end.status === 'failed' ? 'step_failed' : end.status
          outcome.found = ended(found, end.status, now, { error: { code, message: end.message } })
          return { runs: [outcome.found] }
        }
        if (current && storedSchema(current.head) > schemaVersion) {
          // Newer code wrote the session while the step ran (a rollback): its changes are not this code's to merge.
          const message = `The session is now stored in schema version ${storedSchema(current.head)}, newer than this server's`
          outcome.found = ended(found, 'failed', now, { error: { code: 'step_failed', message } })
          return { runs: [outcome.found] }
        }
        const limits = {
          ...(runOptions.maxBytes !== undefined && { maxBytes: runOptions.maxBytes }),
          ...(caller?.userId && { owner: caller.userId }),
        }
        let plan = change ? planMerge(current?.head ?? null, (name) => current?.sizeOf(name), sessionId, change, now, limits) : null
        if (plan && !current) plan = { ...plan, head: { ...plan.head, schemaVersion } }
        outcome.applied = plan?.applied ?? false
        const version = plan?.applied ? plan.head.version : (current?.head.version ?? 0)
        outcome.found = ended(found, 'succeeded', now, { output, version })
        return plan?.applied
          ? { head: plan.head, sets: plan.sets, deletes: plan.deletes, runs: [outcome.found] }
          : { runs: [outcome.found] }
      },
      capture,
      runId,
    )
    if (!outcome.found) return null
    const session = outcome.found.status === 'succeeded' && outcome.finished && after ? await applyResult(after, outcome.applied) : null
    return { run: await runOf(sessionId, outcome.found), finished: outcome.finished, session }
  }

  /** Whether `caller` reaches the session (null when it is missing). */
  async function reachable(sessionId: string, access: AccessOptions): Promise<boolean> {
    checkSessionId(sessionId)
    const caller = checkCaller(access)
    return backend.read(sessionId, (stored) => stored !== null && mayReach(stored.head, caller))
  }

  /** A stored run as it is read: one whose server stopped answering is ended `lost` first. */
  async function readRun(sessionId: string, stored: StoredRun): Promise<RunRecord> {
    if (!stale(stored, Date.now())) return runOf(sessionId, stored)
    const lost = await finishRun(sessionId, stored.runId, { status: 'lost', message: 'The server running the step stopped answering' })
    return lost ? lost.run : runOf(sessionId, stored)
  }

  const store: DefinedStore = {
    [BACKEND]: { backend, options },
    async get(sessionId, access = {}) {
      checkSessionId(sessionId)
      const caller = checkCaller(access)
      const after = await readCurrent(sessionId, (stored) => capture(stored), caller)
      return after && mayReach(after.head, caller) ? objectOf(after) : null
    },
    async since(sessionId, base, access = {}) {
      checkSessionId(sessionId)
      const caller = checkCaller(access)
      const checked = checkBase(base)
      const after = await readCurrent(sessionId, (stored) => capture(stored, checked), caller)
      return after && mayReach(after.head, caller) ? answerOf(after) : null
    },
    apply,
    async create(sessionId, { variables = {}, workflowId, userId, maxBytes } = {}) {
      checkSessionId(sessionId)
      if (userId !== undefined && (typeof userId !== 'string' || userId === ''))
        throw new TypeError('create: userId must be a non-empty string')
      const change = await prepare(sessionId, { variables, ...(workflowId !== undefined && { workflowId }) })
      const limits = { create: true, ...(userId !== undefined && { owner: userId }), ...(maxBytes !== undefined && { maxBytes }) }
      return objectOf(merged(await merge(sessionId, change, limits)).after)
    },
    async delete(sessionId, access = {}) {
      checkSessionId(sessionId)
      const caller = checkCaller(access)
      let deleted = false
      await backend.update(
        sessionId,
        [],
        (current) => {
          if (!current || !mayReach(current.head, caller)) return undefined
          deleted = true
          return { head: null }
        },
        () => null,
      )
      return deleted
    },
    async adopt(sessionId, userId) {
      checkSessionId(sessionId)
      if (typeof userId !== 'string' || userId === '') throw new TypeError('adopt: userId must be a non-empty string')
      await migrateStored(sessionId)
      const after = await backend.update(
        sessionId,
        [],
        (current) => {
          if (!current || !mayReach(current.head, { userId })) throw new SessionProtocolError('not_found', 'No such session')
          if (current.head.userId === userId) return undefined
          checkNotNewer(current.head)
          // A change of its own: the version moves, so every client takes the new owner in.
          return { head: { ...current.head, userId, version: current.head.version + 1, updatedAt: new Date().toISOString() } }
        },
        (stored) => capture(stored),
      )
      return objectOf(after!)
    },
    async list(listOptions = {}) {
      const page = await backend.list(checkList(listOptions))
      // The page's sessions stored at an older schema version (or of a backend that does not say) are
      // migrated, and answered at their new version: a migration keeps `updatedAt`, so the order holds.
      const stale = (listed: Listed) => listed.schemaVersion === undefined || Math.max(listed.schemaVersion, 1) < schemaVersion
      const versions = new Map<string, number>()
      if (migrations)
        for (const listed of page.filter(stale)) {
          if (await migrateStored(listed.sessionId)) versions.set(listed.sessionId, listed.version + 1)
        }
      return page.map(({ schemaVersion: _stored, ...summary }) => ({
        ...summary,
        version: versions.get(summary.sessionId) ?? summary.version,
      }))
    },
    schemaVersion,
    ...(migrations && { migrations }),
    async migrate(sessionId) {
      checkSessionId(sessionId)
      return migrateStored(sessionId)
    },
    startRun,
    finishRun,
    async getRun(sessionId, runId, access = {}) {
      if (!(await reachable(sessionId, access))) return null
      const [stored] = await backend.runs(sessionId, runId)
      return stored ? readRun(sessionId, stored) : null
    },
    async listRuns(sessionId, access = {}) {
      if (!(await reachable(sessionId, access))) return null
      return Promise.all((await backend.runs(sessionId)).map((stored) => readRun(sessionId, stored)))
    },
    async touchRun(sessionId, runId, progress) {
      checkSessionId(sessionId)
      const value = progress && (await encodeRunValue(sessionId, runId, 'progress', progress.value))
      let found: StoredRun | undefined
      await backend.update(
        sessionId,
        [],
        (_current, runs) => {
          found = runs.run
          if (found?.status !== 'running') return undefined
          const record = JSON.parse(found.record) as RunRecord
          const at = new Date().toISOString()
          found = storedRun(
            progress ? { ...record, heartbeatAt: at, progress: value ?? null, rev: record.rev + 1 } : { ...record, heartbeatAt: at },
          )
          return { runs: [found] }
        },
        () => null,
        runId,
      )
      return found ? runOf(sessionId, found) : null
    },
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
        {
          get: (name) => (Object.hasOwn(variables, name) ? variables[name] : undefined),
          set: readOnly,
          delete: readOnly,
          names: () => Object.keys(variables),
        },
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
        const outcome = await merge(sessionId, await prepare(sessionId, draft.changes()), { expectVersion: before?.version ?? 0 })
        if (outcome.kind === 'merged') return objectOf(outcome.after)
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
  const defined = (store as DefinedStore)[BACKEND]
  if (!defined)
    throw new TypeError('This store was not made by workflow-session (memoryStore, fileStore, sqliteStore, postgresStore, or defineStore)')
  return { ...defineStore(defined.backend, { ...defined.options, codec }), close: () => store.close() }
}

/**
 * Values of a session that the app's schema refused once the session was migrated: set aside
 * under `ws:setAside` (`SET_ASIDE_KEY`), not dropped. The store tells its `onError` of them.
 */
export class SetAsideError extends Error {
  override name = 'SetAsideError'
  constructor(
    readonly sessionId: string,
    readonly schemaVersion: number,
    readonly setAside: ReadonlyArray<{ name: string; problem: string }>,
  ) {
    super(
      `Session "${sessionId}": migrating it to schema version ${schemaVersion} set aside what the app's schema refuses, under "${SET_ASIDE_KEY}": ${setAside
        .map(({ name, problem }) => `"${name}" (${problem})`)
        .join(', ')}`,
    )
  }
}

/** What `readCurrent` hands back for a session it must migrate first. */
const STALE = Symbol('stale')

/** A session's migration with a change written after it, as one change: the change's names win (deletes apply first, then sets). */
function withMigration(migration: PreparedChange, change: PreparedChange): PreparedChange {
  const sets = new Map([...migration.sets].filter(([name]) => !change.deletes.includes(name)))
  for (const [name, json] of change.sets) sets.set(name, json)
  const stamped = change.stamped ?? [...change.deletes, ...change.sets.keys()]
  return { ...change, sets, deletes: [...new Set([...migration.deletes, ...change.deletes])], stamped }
}

/** The stored form of a run record: the columns runs are found by, and the record's JSON. */
function storedRun(record: RunRecord): StoredRun {
  return {
    runId: record.runId,
    step: record.step,
    status: record.status,
    startedAt: record.startedAt,
    heartbeatAt: Date.parse(record.heartbeatAt),
    record: JSON.stringify(record),
  }
}

function checkSessionId(sessionId: unknown): asserts sessionId is string {
  if (!isSessionId(sessionId)) {
    const shown = typeof sessionId === 'string' ? JSON.stringify(sessionId.slice(0, 40)) : typeof sessionId
    throw new SessionProtocolError('invalid_session_id', `${shown} is not a session id: 8 to 128 characters of A-Z a-z 0-9 _ -`)
  }
}

function checkBase(base: SessionBase | undefined): SessionBase | undefined {
  if (base === undefined) return undefined
  // A JavaScript caller may pass anything.
  const given: unknown = base
  const { version, createdAt } = (typeof given === 'object' && given !== null ? given : {}) as Partial<SessionBase>
  if (typeof version === 'number' && Number.isSafeInteger(version) && version >= 0 && typeof createdAt === 'string')
    return { version, createdAt }
  throw new TypeError('base must be { version, createdAt } of the snapshot the caller holds')
}

function checkCaller({ caller }: AccessOptions): Caller | undefined {
  if (caller === undefined) return undefined
  const userId = (caller as Partial<Caller> | null)?.userId
  if (userId === null || (typeof userId === 'string' && userId !== '')) return caller
  throw new TypeError('caller must be { userId: string } for a signed-in user or { userId: null } for an anonymous one')
}

function checkList({
  userId,
  limit = 50,
  offset = 0,
}: ListOptions): Required<Pick<ListOptions, 'limit' | 'offset'>> & Pick<ListOptions, 'userId'> {
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > 1000)
    throw new RangeError(`list: limit must be an integer from 1 to 1000, got ${limit}`)
  if (!Number.isSafeInteger(offset) || offset < 0) throw new RangeError(`list: offset must be a whole number, got ${offset}`)
  if (userId !== undefined && typeof userId !== 'string') throw new TypeError('list: userId must be a string')
  return { limit, offset, ...(userId !== undefined && { userId }) }
}
