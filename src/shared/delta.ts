import type { RunDelta, RunRecord, SessionDelta, SessionSnapshot } from './protocol.js'

/**
 * Deltas (docs/protocol.md, "Deltas"): how a version of a session is named (its tag), and how a
 * delta or a run delta is made and applied. The server makes them, the client and the
 * conformance suite apply them, by these rules alone.
 */

/** What names a version of a session: its version, and `createdAt`, which tells it from a session made later under the same id. */
export interface SessionBase {
  version: number
  createdAt: string
}

/** The tag of a version: `7@2026-11-21T04:00:00.000Z`. */
export const tagOf = (base: SessionBase): string => `${base.version}@${base.createdAt}`

const TAG = /^(\d{1,15})@(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)$/

/** A tag read back; `0` (a client that holds nothing) is version 0; null when it is neither. */
export function parseTag(text: string): SessionBase | null {
  if (text === '0') return { version: 0, createdAt: '' }
  const match = TAG.exec(text)
  return match ? { version: Number(match[1]), createdAt: match[2]! } : null
}

/** What a client puts in `Session-Base` for what it holds: the tag, or `0` for nothing. */
export const baseHeaderOf = (held: SessionBase | null): string => (held && held.version > 0 ? tagOf(held) : '0')

/** Whether a session answer is a delta (it has `base`) rather than a snapshot. */
export const isDelta = (body: SessionSnapshot | SessionDelta): body is SessionDelta => 'base' in body

/**
 * The snapshot that `delta` makes of `base`: deletions first, then the values, then the head.
 * Null when the delta is not for this snapshot (another version, another session or lineage):
 * the caller asks for the whole snapshot instead, never merging onto the wrong base.
 */
export function applyDelta(base: SessionSnapshot, delta: SessionDelta): SessionSnapshot | null {
  if (delta.base !== base.version || delta.createdAt !== base.createdAt || delta.sessionId !== base.sessionId) return null
  const deleted = new Set(delta.deleted)
  // Data properties only (a `__proto__` from a hostile server stays a name): kept ones, then the values set.
  const kept = Object.entries(base.variables).filter(([name]) => !deleted.has(name))
  const variables = Object.fromEntries([...kept, ...Object.entries(delta.variables)])
  const { base: _base, variables: _set, deleted: _deleted, ...head } = delta
  return { ...head, variables }
}

/** The answer for a client holding `base`: the snapshot itself, or the delta from it when it applies. */
export const sessionFrom = (base: SessionSnapshot | null, body: SessionSnapshot | SessionDelta): SessionSnapshot | null =>
  isDelta(body) ? base && applyDelta(base, body) : body

/** Whether a run answer is a run delta (it has `base`) rather than a whole record. */
export const isRunDelta = (run: RunRecord | RunDelta): run is RunDelta => 'base' in run

/**
 * The delta of `run` for a client that holds its rev `base`: the record without the fields that
 * never change, nor, while it runs, the end's (null until then).
 */
export function runDeltaOf(run: RunRecord, base: number): RunDelta {
  const delta: RunDelta = {
    runId: run.runId,
    base,
    rev: run.rev,
    status: run.status,
    progress: run.progress,
    heartbeatAt: run.heartbeatAt,
  }
  if (run.status === 'running') return delta
  return { ...delta, finishedAt: run.finishedAt, output: run.output, error: run.error, version: run.version }
}

/** The record that `delta` makes of `held` (any rev from 1 of the same run); null when it cannot (another run, or a provisional record). */
export function applyRunDelta(held: RunRecord, delta: RunDelta): RunRecord | null {
  if (held.runId !== delta.runId || held.rev < 1) return null
  const { base: _base, ...fields } = delta
  return { ...held, ...fields }
}
