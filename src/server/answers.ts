import { parseTag, runDeltaOf, type SessionBase, tagOf } from '../shared/delta.js'
import { type RunRecord, SESSION_BASE_HEADER } from '../shared/protocol.js'
import { SessionProtocolError } from './errors.js'
import type { Caller, SessionAnswer, SessionStore } from './stores/types.js'

/**
 * How the handler and the change feed answer with a session (docs/protocol.md, "Deltas"): to a
 * client that says which version it holds (`Session-Base`), only what changed since then (a
 * delta, or 304 for a GET with nothing new); to any other, the whole snapshot.
 */

/** The base a request states in `Session-Base`: a tag, `0` (holds nothing, reads deltas), or undefined without the header. */
export function baseOf(request: Request): SessionBase | undefined {
  const header = request.headers.get(SESSION_BASE_HEADER)
  if (header === null) return undefined
  const base = parseTag(header.trim())
  if (!base) throw new SessionProtocolError('bad_request', 'Session-Base must be 0 or a tag: {version}@{createdAt}')
  return base
}

/**
 * The session as `caller` is to get it: for a `base` the store can answer from, a delta (O(change));
 * else the snapshot. Null when `caller` has no such session.
 */
export async function sessionAnswer(
  store: SessionStore,
  sessionId: string,
  caller: Caller,
  base: SessionBase | undefined,
): Promise<SessionAnswer | null> {
  if (base && base.version > 0 && store.since) return store.since(sessionId, base, { caller })
  const snapshot = await store.get(sessionId, { caller })
  if (!snapshot) return null
  const current = base !== undefined && base.version === snapshot.version && base.createdAt === snapshot.createdAt
  return { json: JSON.stringify(snapshot), delta: false, current, version: snapshot.version, createdAt: snapshot.createdAt }
}

/** The `ETag` of a session's version: its tag, quoted. */
export const etagOf = (answer: SessionBase) => `"${tagOf(answer)}"`

/** Whether `If-None-Match` names `etag` (or is `*`). */
export function noneMatch(request: Request, etag: string): boolean {
  const header = request.headers.get('if-none-match')
  if (header === null) return false
  return header.split(',').some((given) => {
    const value = given.trim()
    return value === '*' || value === etag || value === `W/${etag}`
  })
}

/**
 * An answer about one run as JSON text: the run whole, or, for a client that reads deltas and
 * holds its rev `after` (1 or more), a run delta; with the session (a delta or a snapshot) when
 * the run succeeded.
 */
export async function runAnswerText(
  store: SessionStore,
  sessionId: string,
  run: RunRecord,
  caller: Caller,
  base: SessionBase | undefined,
  after = 0,
): Promise<string> {
  const record = base && after >= 1 && after <= run.rev ? runDeltaOf(run, after) : run
  const text = `{"run":${JSON.stringify(record)}`
  if (run.status !== 'succeeded') return `${text}}`
  const session = await sessionAnswer(store, sessionId, caller, base)
  return session ? `${text},"session":${session.json}}` : `${text}}`
}
