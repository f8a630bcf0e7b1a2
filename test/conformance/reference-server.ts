import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'

// A small backend written from docs/protocol.md alone (none of the package's code), in memory,
// with the conformance step: the honest server the conformance suite must pass. Each flaw
// breaks exactly one rule of the protocol; the suite must fail a server that has it.

export type Flaw =
  | 'replay-applied-twice'
  | 'older-seq-applied'
  | 'seq-per-client'
  | 'no-per-key-merge'
  | 'deleted-ignored'
  | 'null-deletes'
  | 'fastapi-422'
  | 'step-no-version-bump'
  | 'step-changes-dropped'
  | 'step-sees-nothing'
  | 'step-output-without-input'
  | 'step-failure-422'
  | 'step-failure-generic-message'
  | 'step-failure-partial'
  | 'list-oldest-first'
  | 'list-to-anonymous'
  | 'no-session-size-limit'
  | 'no-body-size-limit'
  | 'seq-string'
  | 'seq-fraction'
  | 'seq-boolean'
  | 'seq-zero'
  | 'updated-at-frozen'
  | 'updated-at-on-replay'
  | 'created-at-moves'
  | 'empty-patch-bumps'
  | 'session-id-wrong-code'
  | 'no-415'
  | 'form-run'
  | 'nan-accepted'
  | 'name-length-utf16'
  | 'summary-with-variables'
  | 'version-as-string'
  | 'unknown-step-500'
  | 'delete-missing-204'
  | 'depth-unlimited'
  | 'lone-surrogate-accepted'
  | 'plain-text-404'
  | 'run-started-twice'
  | 'cancel-ignored'
  | 'cancelled-run-merged'
  | 'run-oracle'
  | 'long-poll-at-once'
  | 'delta-misses-a-change'
  | 'delta-ignores-lineage'
  | 'delta-base-mislabeled'
  | 'no-304'
  | 'if-none-match-ignored'
  | 'no-etag'
  | 'if-none-match-stale'
  | 'run-delta-stale-progress'
  | 'bad-base-accepted'
  | 'version-0-start-time'
  | 'adopt-anonymous'
  | 'adopt-no-version-bump'
  | 'adopt-leaves-it-public'
  | 'adopt-own-404'
  | 'adopt-missing-creates'
  | 'adopt-takes-others'
  | 'snapshot-without-schema-version'
  | 'schema-version-ignored'
  | 'current-patch-migrated'
  | 'newer-patch-accepted'
  | 'mismatch-without-version'
  | 'mismatch-names-request-version'
  | 'schema-version-string'
  | 'old-client-step'
  | 'old-client-run'
  | 'run-schema-version-code'
  | 'schema-before-owner'

export interface ReferenceServer {
  /** Where the endpoints are: `http://127.0.0.1:PORT/api/session`. */
  base: string
  close(): Promise<void>
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json }
type Variables = Record<string, Json>

interface Stored {
  variables: Variables
  version: number
  createdAt: string
  updatedAt: string
  userId: string | undefined
  seqs: Map<string, number>
  /** The names each version changed (for deltas), oldest first. */
  changes: Array<{ version: number; names: string[] }>
}

interface Run {
  runId: string
  step: string
  status: string
  input: Json
  progress: Json
  output: Json
  error: { code: string; message: string } | null
  startedAt: string
  finishedAt: string | null
  heartbeatAt: string
  readVersion: number
  version: number | null
  rev: number
}

interface Change {
  variables: Variables
  deleted: string[]
  clientId?: string
  seq?: number
  /** The schema version a patch is written in; a change of the server's own (a step's) has none: it is in the server's. */
  schemaVersion?: number
}

class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    /** More fields of the answer's `error`. */
    readonly more: Record<string, Json> = {},
  ) {
    super(message)
  }
}

/** What a request's schema version is checked for: a patch may be older (it is migrated), a run or a step call must be the server's. */
type SchemaUse = 'patch' | 'step' | 'run'

const BASE = '/api/session'
// Schema versions (docs/protocol.md): the conformance schema, version 2, whose one migration
// renames conformance_v1 to conformance_v2. Every session here is stored at version 2.
const SCHEMA_VERSION = 2
const RENAMED: Record<string, string> = { conformance_v1: 'conformance_v2' }
const SESSION_ID = /^[A-Za-z0-9_-]{8,128}$/
const RESERVED = new Set(['__proto__', 'constructor', 'prototype'])
const isObject = (value: unknown): value is Record<string, Json> => typeof value === 'object' && value !== null && !Array.isArray(value)
// eslint-disable-next-line @typescript-eslint/no-misused-spread -- code points, the unit of the protocol's limits
const characters = (text: string) => [...text].length
// A surrogate that is not half of a pair (paired ones are one code point under the u flag).
const wellFormed = (text: string) => !/\p{Cs}/u.test(text)

export interface ReferenceOptions {
  flaw?: Flaw
  /** Largest body and session; default 1 MiB. */
  maxBytes?: number
  step?: string
  /** Not a flaw: every object of every answer with its keys in reverse order. */
  reorderKeys?: boolean
  /**
   * Not a flaw: a body declared over the limit is answered 413 at once, unread, as a framework's
   * size limit may do; the answer does not say `Connection: close`, and the connection is closed
   * under whatever the client sends next on it.
   */
  closesAfterEarlyAnswer?: boolean
}

export async function startReferenceServer(options: ReferenceOptions = {}): Promise<ReferenceServer> {
  const { flaw, maxBytes = 1024 * 1024, step = 'conformance_echo', reorderKeys = false, closesAfterEarlyAnswer = false } = options
  const sessions = new Map<string, Stored>()
  const seqsByClient = new Map<string, number>()
  const startedAt = new Date().toISOString()

  // Deltas (docs/protocol.md, "Deltas"): the base a request states, and the answer for it.
  type Base = { version: number; createdAt: string }
  const TAG = /^(\d{1,15})@(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)$/
  function baseOf(request: IncomingMessage): Base | undefined {
    const header = request.headers['session-base']
    if (typeof header !== 'string') return undefined
    if (header === '0') return { version: 0, createdAt: '' }
    const match = TAG.exec(header)
    if (match) return { version: Number(match[1]), createdAt: match[2]! }
    if (flaw === 'bad-base-accepted') return undefined
    throw new Refusal(400, 'bad_request', 'Session-Base is 0 or {version}@{createdAt}')
  }

  /** The session for a client holding `base`: the delta from it when this server can tell, else the snapshot. */
  function answerFor(sessionId: string, stored: Stored | undefined, base: Base | undefined) {
    if (!stored || !base || base.version < 1 || base.version > stored.version) return snapshot(sessionId, stored)
    if (base.createdAt !== stored.createdAt && flaw !== 'delta-ignores-lineage') return snapshot(sessionId, stored)
    const from = flaw === 'delta-misses-a-change' ? base.version + 1 : base.version
    const names = new Set(stored.changes.filter((change) => change.version > from).flatMap((change) => change.names))
    const variables: Variables = {}
    const deleted: string[] = []
    for (const name of names) {
      if (Object.hasOwn(stored.variables, name)) variables[name] = stored.variables[name]!
      else deleted.push(name)
    }
    const { variables: _all, ...head } = snapshot(sessionId, stored)
    return { ...head, base: flaw === 'delta-base-mislabeled' ? base.version - 1 : base.version, variables, deleted }
  }

  function snapshot(sessionId: string, stored: Stored | undefined) {
    // The flaw: "now" of a version-0 snapshot read once, when the server started.
    const now = flaw === 'version-0-start-time' ? startedAt : new Date().toISOString()
    const { variables = {}, version = 0, createdAt = now, updatedAt = now, userId } = stored ?? {}
    return {
      sessionId,
      variables,
      version: flaw === 'version-as-string' ? String(version) : version,
      createdAt,
      updatedAt,
      ...(userId && { userId }),
      ...(flaw !== 'snapshot-without-schema-version' && { schemaVersion: SCHEMA_VERSION }),
    }
  }

  function reachable(sessionId: string, user: string | undefined): Stored | undefined {
    const stored = sessions.get(sessionId)
    if (stored?.userId !== undefined && stored.userId !== user) throw new Refusal(404, 'not_found', 'No such session')
    return stored
  }

  /** A body's `schemaVersion`: absent is 1; anything but an integer from 1 to 2^53 − 1 is 400 `code`. */
  function schemaVersionOf(body: Record<string, Json>, code: 'invalid_patch' | 'invalid_run'): number {
    const value = body.schemaVersion
    if (value === undefined) return 1
    if (flaw === 'schema-version-string' && typeof value === 'string' && /^\d+$/.test(value)) return Number(value)
    if (typeof value === 'number' && Number.isSafeInteger(value) && value >= 1) return value
    throw new Refusal(400, flaw === 'run-schema-version-code' ? 'invalid_patch' : code, '"schemaVersion" is a whole number from 1')
  }

  /** 409 schema_mismatch unless the server takes a request in `version` for this `use`. */
  function takeSchema(version: number, use: SchemaUse) {
    const takes = {
      patch: version <= SCHEMA_VERSION || flaw === 'newer-patch-accepted' || flaw === 'schema-version-ignored',
      step: version === SCHEMA_VERSION || (flaw === 'old-client-step' && version < SCHEMA_VERSION),
      run: version === SCHEMA_VERSION || (flaw === 'old-client-run' && version < SCHEMA_VERSION),
    }[use]
    if (takes) return
    const named = flaw === 'mismatch-names-request-version' ? version : SCHEMA_VERSION
    const more: Record<string, Json> = flaw === 'mismatch-without-version' ? {} : { schemaVersion: named }
    throw new Refusal(409, 'schema_mismatch', `Schema version ${version}; this server's is ${SCHEMA_VERSION}`, more)
  }

  /** The session, for a request in schema version `version`: the owner is checked first (404), then the version (409). */
  function reachableIn(sessionId: string, user: string | undefined, version: number, use: SchemaUse): Stored | undefined {
    if (flaw === 'schema-before-owner') takeSchema(version, use)
    const stored = reachable(sessionId, user)
    takeSchema(version, use)
    return stored
  }

  /** A patch from an older client, moved by the migration: a renamed variable is set and deleted under its new name. */
  function migrated(change: Change): Change {
    if (change.schemaVersion === undefined || flaw === 'schema-version-ignored') return change
    const older = flaw === 'current-patch-migrated' ? change.schemaVersion <= SCHEMA_VERSION : change.schemaVersion < SCHEMA_VERSION
    if (!older) return change
    const rename = (name: string) => RENAMED[name] ?? name
    const variables = Object.fromEntries(Object.entries(change.variables).map(([name, value]) => [rename(name), value]))
    return { ...change, variables, deleted: change.deleted.map(rename) }
  }

  function checkName(name: string) {
    const length = flaw === 'name-length-utf16' ? name.length : characters(name)
    if (length === 0 || length > 256 || RESERVED.has(name) || !wellFormed(name)) throw new Refusal(400, 'invalid_key', `Bad variable name`)
  }

  function checkValue(value: Json, depth: number) {
    if (typeof value === 'string' && !wellFormed(value) && flaw !== 'lone-surrogate-accepted')
      throw new Refusal(400, 'invalid_patch', 'Not Unicode text')
    if (typeof value !== 'object' || value === null) return
    if (depth + 1 > 64 && flaw !== 'depth-unlimited') throw new Refusal(400, 'invalid_patch', 'Nested too deep')
    for (const [key, item] of Object.entries(value)) {
      if (!wellFormed(key) && flaw !== 'lone-surrogate-accepted') throw new Refusal(400, 'invalid_patch', 'Not Unicode text')
      checkValue(item, depth + 1)
    }
  }

  function seqOf(seq: unknown): number | undefined {
    if (flaw === 'seq-string' && typeof seq === 'string' && /^\d+$/.test(seq)) return Number(seq)
    if (flaw === 'seq-boolean' && seq === true) return 1
    const lowest = flaw === 'seq-zero' ? 0 : 1
    const whole = flaw === 'seq-fraction' || Number.isInteger(seq)
    return typeof seq === 'number' && whole && seq >= lowest && seq <= Number.MAX_SAFE_INTEGER ? seq : undefined
  }

  function toChange(body: unknown): Change {
    if (!isObject(body)) throw new Refusal(400, 'invalid_patch', 'A patch is an object')
    const { variables = {}, deleted = [], clientId, seq } = body
    if (!isObject(variables)) throw new Refusal(400, 'invalid_patch', '"variables" is an object')
    if (!Array.isArray(deleted) || !deleted.every((name) => typeof name === 'string'))
      throw new Refusal(400, 'invalid_patch', '"deleted" is an array of names')
    if ((clientId === undefined) !== (seq === undefined)) throw new Refusal(400, 'invalid_patch', 'clientId and seq come together')
    const change: Change = { variables, deleted, schemaVersion: schemaVersionOf(body, 'invalid_patch') }
    if (clientId !== undefined) {
      const seen = seqOf(seq)
      if (typeof clientId !== 'string' || characters(clientId) < 1 || characters(clientId) > 128 || seen === undefined)
        throw new Refusal(400, 'invalid_patch', 'Bad clientId or seq')
      Object.assign(change, { clientId, seq: seen })
    }
    for (const [name, value] of Object.entries(variables)) {
      checkName(name)
      checkValue(value, 0)
    }
    deleted.forEach(checkName)
    return change
  }

  /** Merges a change as one atomic step; answers the snapshot after it. */
  function apply(sessionId: string, asSent: Change, user: string | undefined, bump = true) {
    const stored = reachableIn(sessionId, user, asSent.schemaVersion ?? SCHEMA_VERSION, 'patch')
    const change = migrated(asSent)
    const { clientId, seq } = change
    if (clientId !== undefined && seq !== undefined) {
      const last = flaw === 'seq-per-client' ? seqsByClient.get(clientId) : stored?.seqs.get(clientId)
      const replay = last !== undefined && (flaw === 'older-seq-applied' ? seq === last : flaw !== 'replay-applied-twice' && seq <= last)
      if (replay) {
        if (stored && flaw === 'updated-at-on-replay') stored.updatedAt = new Date().toISOString()
        return snapshot(sessionId, stored)
      }
    }
    const empty = Object.keys(change.variables).length === 0 && change.deleted.length === 0
    if (empty && flaw !== 'empty-patch-bumps') return snapshot(sessionId, stored)
    const variables: Variables = flaw === 'no-per-key-merge' ? {} : { ...stored?.variables }
    if (flaw !== 'deleted-ignored') for (const name of change.deleted) delete variables[name]
    for (const [name, value] of Object.entries(change.variables)) {
      if (value === null && flaw === 'null-deletes') delete variables[name]
      else variables[name] = value
    }
    if (Buffer.byteLength(JSON.stringify(variables)) > maxBytes && flaw !== 'no-session-size-limit')
      throw new Refusal(413, 'too_large', 'The session would be too large')
    const now = new Date().toISOString()
    const next: Stored = {
      variables,
      version: (stored?.version ?? 0) + (bump ? 1 : 0),
      createdAt: stored && flaw !== 'created-at-moves' ? stored.createdAt : now,
      updatedAt: stored && flaw === 'updated-at-frozen' ? stored.updatedAt : now,
      userId: stored ? stored.userId : user,
      seqs: stored?.seqs ?? new Map(),
      changes: [
        ...(stored?.changes ?? []),
        { version: (stored?.version ?? 0) + (bump ? 1 : 0), names: [...change.deleted, ...Object.keys(change.variables)] },
      ],
    }
    if (clientId !== undefined && seq !== undefined) {
      next.seqs.set(clientId, seq)
      seqsByClient.set(clientId, seq)
    }
    sessions.set(sessionId, next)
    return snapshot(sessionId, next)
  }

  /** A session made empty at version 1 (a run's, or the flaw that adopts a missing one). */
  function newSession(user: string | undefined): Stored {
    const now = new Date().toISOString()
    return {
      variables: {},
      version: 1,
      createdAt: now,
      updatedAt: now,
      userId: user,
      seqs: new Map(),
      changes: [{ version: 1, names: [] }],
    }
  }

  /** The conformance step of docs/protocol.md. */
  function runStep(sessionId: string, input: Json | undefined, user: string | undefined, schemaVersion: number) {
    const stored = reachableIn(sessionId, user, schemaVersion, 'step')
    const seen = flaw === 'step-sees-nothing' ? {} : structuredClone(stored?.variables ?? {})
    if (isObject(input) && typeof input.fail === 'string') {
      if (flaw === 'step-failure-partial') apply(sessionId, { variables: { conformance_echo: input }, deleted: [] }, user)
      const message = flaw === 'step-failure-generic-message' ? 'The step failed' : input.fail
      throw new Refusal(flaw === 'step-failure-422' ? 422 : 500, 'step_failed', message)
    }
    const echo = input ?? null
    const change: Change = { variables: flaw === 'step-changes-dropped' ? {} : { conformance_echo: echo }, deleted: [] }
    const session = apply(sessionId, change, user, flaw !== 'step-no-version-bump')
    return { output: { input: flaw === 'step-output-without-input' ? null : echo, seen }, session }
  }

  // Runs (docs/protocol.md, "Runs"): records in memory, the conformance step executed on timers.
  const runs = new Map<string, Map<string, Run>>()
  const stops = new Map<Run, () => void>()
  const waiters = new Set<() => void>()
  const changed = () => [...waiters].forEach((wake) => wake())

  function runsOf(sessionId: string): Map<string, Run> {
    let mine = runs.get(sessionId)
    if (!mine) runs.set(sessionId, (mine = new Map()))
    return mine
  }

  function end(run: Run, status: string, fields: Partial<Run> = {}) {
    if (run.status !== 'running') return
    const now = new Date().toISOString()
    Object.assign(run, fields, { status, finishedAt: now, heartbeatAt: now, rev: run.rev + 1 })
    stops.get(run)?.()
    stops.delete(run)
    changed()
  }

  /** The conformance step as a run: `{ sleepMs }` reports progress (at most 4 a second) while it sleeps. */
  function execute(sessionId: string, run: Run, user: string | undefined) {
    const input = run.input
    const seen = structuredClone(sessions.get(sessionId)?.variables ?? {})
    const sleepMs = isObject(input) && typeof input.sleepMs === 'number' ? Math.min(input.sleepMs, 60_000) : 0
    const startedAt = Date.now()
    const finish = () => {
      if (run.status !== 'running') return
      if (isObject(input) && typeof input.fail === 'string') {
        end(run, 'failed', { error: { code: 'step_failed', message: input.fail } })
        return
      }
      const session = apply(sessionId, { variables: { conformance_echo: input }, deleted: [] }, user)
      end(run, 'succeeded', { output: { input, seen }, version: session.version as number })
    }
    const progress = setInterval(() => {
      run.progress = { slept: Date.now() - startedAt }
      run.rev++
      changed()
    }, 250)
    const timer = setTimeout(() => {
      clearInterval(progress)
      finish()
    }, sleepMs)
    stops.set(run, () => {
      clearInterval(progress)
      clearTimeout(timer)
      // The flaw: a cancelled run's changes are merged all the same.
      if (flaw === 'cancelled-run-merged' && run.status === 'cancelled')
        apply(sessionId, { variables: { conformance_echo: input }, deleted: [] }, user)
    })
  }

  function startRun(sessionId: string, body: Json | undefined, user: string | undefined): [number, Run] {
    if (
      !isObject(body) ||
      typeof body.runId !== 'string' ||
      !SESSION_ID.test(body.runId) ||
      typeof body.step !== 'string' ||
      body.step === ''
    )
      throw new Refusal(400, 'invalid_run', 'A run start is { "runId", "step", "input"?, "schemaVersion"? }')
    const schemaVersion = schemaVersionOf(body, 'invalid_run')
    if (body.step !== step) throw new Refusal(404, 'unknown_step', 'No such step')
    const input = body.input ?? null
    checkValue(input, 0)
    let stored = reachableIn(sessionId, user, schemaVersion, 'run')
    const mine = runsOf(sessionId)
    const existing = mine.get(body.runId)
    if (existing && flaw !== 'run-started-twice') return [200, existing]
    const going = [...mine.values()].find((run) => run.step === body.step && run.status === 'running')
    if (going && !existing) return [200, going]
    if (!stored) {
      stored = newSession(user)
      sessions.set(sessionId, stored)
    }
    const now = new Date().toISOString()
    const run: Run = {
      runId: body.runId,
      step: body.step,
      status: 'running',
      input,
      progress: null,
      output: null,
      error: null,
      startedAt: now,
      finishedAt: null,
      heartbeatAt: now,
      readVersion: stored.version,
      version: null,
      rev: 1,
    }
    mine.set(run.runId, run)
    execute(sessionId, run, user)
    return [202, run]
  }

  /** The run once its rev is above `after` (or it ended), or after `waitMs`. */
  async function waitFor(run: Run, after: number, waitMs: number): Promise<Run> {
    if (flaw === 'long-poll-at-once') return run
    const until = Date.now() + waitMs
    while (run.rev <= after && run.status === 'running' && Date.now() < until) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, until - Date.now())
        waiters.add(done)
        function done() {
          clearTimeout(timer)
          waiters.delete(done)
          resolve()
        }
      })
    }
    return run
  }

  /** An answer about a run: a run delta for a client that reads deltas and holds rev `after`, the session with a succeeded one. */
  function runAnswer(sessionId: string, run: Run, base?: Base, after = 0) {
    let shown: object = run
    if (base && after >= 1 && after <= run.rev) {
      const { step: _step, input: _input, startedAt: _startedAt, readVersion: _read, finishedAt, output, error, version, ...rest } = run
      shown = { ...rest, base: after, ...(run.status !== 'running' && { finishedAt, output, error, version }) }
      // The flaw: the progress a run delta carries is the one of the run's start, not its latest.
      if (flaw === 'run-delta-stale-progress') shown = { ...shown, progress: null }
    }
    return run.status === 'succeeded' ? { run: shown, session: answerFor(sessionId, sessions.get(sessionId), base) } : { run: shown }
  }

  function knownRun(sessionId: string, runId: string, user: string | undefined): Run {
    reachable(sessionId, user)
    const run = runs.get(sessionId)?.get(runId)
    if (run) return run
    const elsewhere = [...runs.values()].some((mine) => mine.has(runId))
    throw new Refusal(404, 'not_found', flaw === 'run-oracle' && elsewhere ? 'That run is in another session' : 'No such run')
  }

  /** `POST {base}/{id}/adopt`: the signed-in caller takes a session without an owner. */
  function adopt(sessionId: string, user: string | undefined) {
    const stored = user === undefined || flaw === 'adopt-takes-others' ? sessions.get(sessionId) : reachable(sessionId, user)
    if (!stored) {
      if (flaw !== 'adopt-missing-creates' || user === undefined) throw new Refusal(404, 'not_found', 'No such session')
      const made = newSession(user)
      sessions.set(sessionId, made)
      return snapshot(sessionId, made)
    }
    if (user === undefined) return snapshot(sessionId, stored) // the flaw 'adopt-anonymous': nobody to give it to
    if (stored.userId === user) {
      if (flaw === 'adopt-own-404') throw new Refusal(404, 'not_found', 'No session without an owner')
      return snapshot(sessionId, stored)
    }
    const adopted: Stored = {
      ...stored,
      userId: flaw === 'adopt-leaves-it-public' ? stored.userId : user,
      version: stored.version + (flaw === 'adopt-no-version-bump' ? 0 : 1),
      updatedAt: new Date().toISOString(),
      changes: [...stored.changes, { version: stored.version + 1, names: [] }],
    }
    sessions.set(sessionId, adopted)
    return snapshot(sessionId, adopted)
  }

  const numberOf = (query: URLSearchParams, name: string, max: number) => {
    const text = query.get(name)
    if (text === null) return name === 'after' ? -1 : 0
    const value = /^\d{1,15}$/.test(text) ? Number(text) : NaN
    if (!(value <= max)) throw new Refusal(400, 'bad_request', `Bad ${name}`)
    return value
  }

  function list(query: URLSearchParams, user: string | undefined) {
    const number = (name: string, fallback: number, max: number) => {
      const text = query.get(name)
      if (text === null) return fallback
      const value = /^\d+$/.test(text) ? Number(text) : NaN
      if (!(value >= (name === 'limit' ? 1 : 0) && value <= max)) throw new Refusal(400, 'bad_request', `Bad ${name}`)
      return value
    }
    const [limit, offset] = [number('limit', 50, 100), number('offset', 0, Number.MAX_SAFE_INTEGER)]
    if (user === undefined && flaw !== 'list-to-anonymous') return { sessions: [] }
    const mine = [...sessions].filter(([, stored]) => user === undefined || stored.userId === user)
    mine.sort(([a, x], [b, y]) => (x.updatedAt === y.updatedAt ? (a < b ? -1 : 1) : x.updatedAt > y.updatedAt ? -1 : 1))
    if (flaw === 'list-oldest-first') mine.reverse()
    return {
      sessions: mine.slice(offset, offset + limit).map(([id, stored]) => {
        // A summary carries no schemaVersion: only snapshots and deltas do.
        const { variables, schemaVersion: _schemaVersion, ...summary } = snapshot(id, stored)
        return flaw === 'summary-with-variables' ? { ...summary, variables } : summary
      }),
    }
  }

  /** A body as JSON: 415 unless application/json (a run may be empty without it), 413 past the limit, 400 when it does not parse. */
  async function readJson(request: IncomingMessage, emptyNeedsNoType: boolean): Promise<Json | undefined> {
    const chunks: Buffer[] = []
    for await (const chunk of request) chunks.push(chunk as Buffer)
    const bytes = Buffer.concat(chunks)
    const type = (request.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase()
    if (type !== 'application/json' && flaw !== 'no-415') {
      if (emptyNeedsNoType && bytes.length === 0 && (type === '' || flaw === 'form-run')) return undefined
      throw new Refusal(415, 'unsupported_media_type', 'Send application/json')
    }
    if (bytes.length > maxBytes && flaw !== 'no-body-size-limit') throw new Refusal(413, 'too_large', 'The body is too large')
    let text = bytes.toString('utf8')
    if (emptyNeedsNoType && text.trim() === '') return undefined
    if (flaw === 'nan-accepted') text = text.replace(/-?\b(NaN|Infinity)\b/g, 'null')
    try {
      return JSON.parse(text) as Json
    } catch {
      if (flaw === 'fastapi-422') throw new Refusal(422, 'fastapi', 'JSON decode error')
      throw new Refusal(400, 'invalid_json', 'The body is not JSON')
    }
  }

  async function answer(request: IncomingMessage): Promise<[number, unknown, Record<string, string>?]> {
    const url = new URL(request.url ?? '/', 'http://reference')
    if (url.pathname !== BASE && !url.pathname.startsWith(`${BASE}/`)) throw new Refusal(404, 'not_found', 'No such endpoint')
    const [sessionId = '', ...rest] = url.pathname.slice(BASE.length).split('/').filter(Boolean).map(decodeURIComponent)
    const route =
      sessionId === ''
        ? 'list'
        : rest.length === 0
          ? 'session'
          : rest.length === 2 && rest[0] === 'run'
            ? 'run'
            : rest.length === 1 && rest[0] === 'runs'
              ? 'runs'
              : rest.length === 2 && rest[0] === 'runs'
                ? 'oneRun'
                : rest.length === 3 && rest[0] === 'runs' && rest[2] === 'cancel'
                  ? 'cancel'
                  : rest.length === 1 && rest[0] === 'adopt'
                    ? 'adopt'
                    : undefined
    const method = request.method ?? 'GET'
    const allowed = {
      list: ['GET'],
      session: ['GET', 'POST', 'DELETE'],
      run: ['POST'],
      runs: ['GET', 'POST'],
      oneRun: ['GET'],
      cancel: ['POST'],
      adopt: ['POST'],
    }
    if (!route) throw new Refusal(404, 'not_found', 'No such endpoint')
    if (!allowed[route].includes(method)) throw new Refusal(405, 'method_not_allowed', 'Method not allowed')
    const user = typeof request.headers['x-user'] === 'string' ? request.headers['x-user'] : undefined
    if (route === 'list') return [200, list(url.searchParams, user)]
    if (route === 'adopt' && user === undefined && flaw !== 'adopt-anonymous')
      throw new Refusal(401, 'unauthenticated', 'Sign in to adopt a session')
    if (!SESSION_ID.test(sessionId))
      throw flaw === 'session-id-wrong-code'
        ? new Refusal(404, 'not_found', 'No such session')
        : new Refusal(400, 'invalid_session_id', 'Bad session id')
    const base = method === 'DELETE' ? undefined : baseOf(request)
    if (route === 'runs' && method === 'POST') {
      const waitMs = numberOf(url.searchParams, 'waitMs', 30_000)
      const [status, run] = startRun(sessionId, await readJson(request, false), user)
      return [status, runAnswer(sessionId, await waitFor(run, run.rev, waitMs), base)]
    }
    if (route === 'runs') {
      if (!reachable(sessionId, user)) throw new Refusal(404, 'not_found', 'No such session')
      return [200, { runs: [...runsOf(sessionId).values()].reverse() }]
    }
    if (route === 'oneRun') {
      const run = knownRun(sessionId, rest[1]!, user)
      const after = numberOf(url.searchParams, 'after', 999_999_999_999_999)
      return [200, runAnswer(sessionId, await waitFor(run, after, numberOf(url.searchParams, 'waitMs', 30_000)), base, after)]
    }
    if (route === 'adopt') {
      await readJson(request, true)
      const adopted = adopt(sessionId, user)
      return [200, base ? answerFor(sessionId, sessions.get(sessionId), base) : adopted]
    }
    if (route === 'cancel') {
      await readJson(request, true)
      const run = knownRun(sessionId, rest[1]!, user)
      if (flaw !== 'cancel-ignored') end(run, 'cancelled', { error: { code: 'cancelled', message: 'The run was cancelled' } })
      return [200, runAnswer(sessionId, run, base)]
    }
    if (route === 'run') {
      if (rest[1] !== step)
        throw new Refusal(
          flaw === 'unknown-step-500' ? 500 : 404,
          flaw === 'unknown-step-500' ? 'step_failed' : 'unknown_step',
          'No such step',
        )
      const body = await readJson(request, true)
      if (body !== undefined && !isObject(body)) throw new Refusal(400, 'invalid_patch', 'A run body is { "input": …, "schemaVersion": … }')
      // An empty body says no schema version: 1.
      const schemaVersion = body === undefined ? 1 : schemaVersionOf(body, 'invalid_patch')
      const { output, session } = runStep(sessionId, body?.input, user, schemaVersion)
      return [200, { output, session: base ? answerFor(sessionId, sessions.get(sessionId), base) : session }]
    }
    if (method === 'POST') {
      const after = apply(sessionId, toChange(await readJson(request, false)), user)
      return [200, base && sessions.has(sessionId) ? answerFor(sessionId, sessions.get(sessionId), base) : after]
    }
    const stored = reachable(sessionId, user)
    if (method === 'DELETE') {
      if (!stored && flaw !== 'delete-missing-204') throw new Refusal(404, 'not_found', 'No such session')
      sessions.delete(sessionId)
      return [204, undefined]
    }
    if (!stored) throw new Refusal(404, 'not_found', 'No such session')
    // Nothing new for a client that holds the current version: 304, no body; by Session-Base, or by If-None-Match and the ETag.
    const etag = `"${stored.version}@${stored.createdAt}"`
    const noneMatch = request.headers['if-none-match']
    const named =
      noneMatch !== undefined &&
      flaw !== 'if-none-match-ignored' &&
      (flaw === 'if-none-match-stale' || noneMatch.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag))
    if ((base && base.version === stored.version && base.createdAt === stored.createdAt && flaw !== 'no-304') || named)
      return [304, undefined, { etag }]
    return [200, answerFor(sessionId, stored, base), flaw === 'no-etag' ? {} : { etag }]
  }

  // With closesAfterEarlyAnswer: connections whose last request was answered before its body was read.
  const answeredEarly = new WeakSet<Socket>()
  const server = createServer((request, response) => {
    if (answeredEarly.has(request.socket)) return void request.socket.destroy()
    if (closesAfterEarlyAnswer && Number(request.headers['content-length']) > maxBytes) {
      const body = JSON.stringify({ error: { code: 'too_large', message: 'The body is too large' } })
      const head = `HTTP/1.1 413 Payload Too Large\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n`
      request.socket.write(head + body)
      answeredEarly.add(request.socket)
      return
    }
    answer(request)
      .catch((error: unknown): [number, unknown, Record<string, string>?] => {
        if (!(error instanceof Refusal)) throw error
        if (error.code === 'fastapi') return [422, { detail: [{ type: 'json_invalid', msg: error.message }] }]
        return [error.status, { error: { code: error.code, message: error.message, ...error.more } }]
      })
      .then(([status, body, headers = {}]) => {
        if (status === 404 && flaw === 'plain-text-404')
          return void response.writeHead(404, { 'content-type': 'text/plain' }).end('Not Found')
        if (body === undefined) return void response.writeHead(status, headers).end()
        const ordered = reorderKeys ? reversedKeys(body) : body
        response
          .writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers })
          .end(JSON.stringify(ordered))
      })
      .catch((error: unknown) =>
        response
          .writeHead(500, { 'content-type': 'application/json' })
          .end(JSON.stringify({ error: { code: 'internal_error', message: String(error) } })),
      )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return {
    base: `http://127.0.0.1:${port}${BASE}`,
    close: () =>
      new Promise((resolve) => {
        for (const stop of stops.values()) stop()
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

function reversedKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(reversedKeys)
  if (!isObject(value)) return value
  return Object.fromEntries(
    Object.entries(value)
      .reverse()
      .map(([key, item]) => [key, reversedKeys(item)]),
  )
}
