import type { Migrations } from '../shared/migrations.js'
import type { JsonValue, RunRecord, SessionSnapshot, SessionSummary, Variables } from '../shared/protocol.js'
import type { LocalCopyStorage } from './cache.js'
// eslint-disable-next-line @typescript-eslint/no-unused-vars -- SessionValueError is named by {@link} in the docs below
import type { SessionError, SessionValueError } from './errors.js'
import type { SessionPlugin } from './plugins.js'
import type { ClientInternals, ClientProbe } from './probe.js'
import type { SessionIdStorage } from './session-id.js'
import type { SyncStatus } from './status.js'
import type { PageLocks } from './tabs.js'
import type { HeadersOption } from './transport.js'

export interface SessionClientOptions {
  /** Where the session endpoints are mounted; default `/api/session`. */
  endpoint?: string
  /** Omit it to use the id `sessionIdStorage` remembers for `endpoint`, or a new one. */
  sessionId?: string
  /**
   * Where the session id is remembered between loads when `sessionId` is omitted; default
   * `localStorage` where there is one. In Node there is none: pass one (a file, your own store),
   * or each start makes a new session (`client.sessionIdRemembered` is then false). `null`:
   * remember nothing.
   */
  sessionIdStorage?: SessionIdStorage | null
  /**
   * The id was just made and the server has no session under it: nothing is fetched for it
   * until its first write (which creates it). Set by `useSessions().start()`.
   */
  newSession?: boolean
  /** Default: the global `fetch`, looked up at each request. */
  fetch?: typeof fetch
  /** Sent with every request; a function is called per request (fresh tokens). */
  headers?: HeadersOption
  /** Where the local copy lives; default IndexedDB (falls back to memory when it fails). */
  storage?: LocalCopyStorage
  /** A request without an answer in this time fails as retryable; default 15 s. */
  requestTimeoutMs?: number
  /**
   * Ask for only what changed (docs/protocol.md, "Deltas"): each request states the version the
   * page holds in a `Session-Base` header, and answers carry the change, not the session. Default
   * true; a server that does not know the header answers whole snapshots, which work as before.
   * Turn it off for a backend on another origin whose CORS policy does not allow that header.
   */
  deltas?: boolean
  /** `flush()` rejects after this long without confirmation; default 30 s. */
  flushTimeoutMs?: number
  /** Backoff between retries: `baseMs · 2^(n-1)`, at most `maxMs`, times a jitter in [0.5, 1); default 500 ms / 30 s. */
  retry?: { baseMs?: number; maxMs?: number }
  /**
   * Called when the server answers 401. Refresh the credentials (your `headers` function then
   * sends the new ones) and resolve `true` to retry the patch once; otherwise it is refused.
   */
  // eslint-disable-next-line @typescript-eslint/no-invalid-void-type -- a callback may return nothing (then the patch is refused)
  onAuthError?: (error: SessionError) => boolean | void | Promise<boolean | void>
  /** Web Locks, to tell a closed tab's left-over changes from a live tab's; default `navigator.locks`. */
  locks?: PageLocks | null
  /**
   * The app's schema (`defineMigrations`, the same declaration the server's store has): patches
   * and runs say this version, and what this device kept in an older one (the session, edits
   * queued offline or left by a closed tab) is migrated before it shows or is sent. Default:
   * version 1, nothing to migrate.
   */
  migrations?: Migrations
  /**
   * The server is at another schema version than this page (a deploy, a rollback): the page
   * should be reloaded. Called once; `status.needsUpdate` says it too. Edits are kept (on the
   * device): a patch the server refuses for it stays queued, and the reloaded page sends it.
   * Default: nothing.
   *
   * @example
   * onUpdateNeeded: () => showBanner('A new version is out', { action: 'Reload', onClick: () => location.reload() })
   */
  onUpdateNeeded?: (versions: { page: number; server: number }) => void
  /** Recorded on the session (`snapshot.workflowId`): which workflow this session is for. */
  workflowId?: string
  /**
   * Optional capabilities, bundled only when imported: `liveUpdates()` (the server's change
   * stream), `tabSync()` (open tabs share confirmed changes at once), `encryptedLocalCopy(key)`,
   * `schemaValidation(schema)`. Default none.
   */
  plugins?: readonly SessionPlugin[]
}

/** A session's variables on this page: read synchronously, written optimistically, synced in patches. */
export interface SessionClient {
  readonly sessionId: string
  /** Whether the session id is kept for the next load (in `sessionIdStorage`); false when nothing remembers it, or the app chose the id. */
  readonly sessionIdRemembered: boolean
  readonly endpoint: string
  /** This page's client id: its patches carry it with their `seq`. */
  readonly clientId: string
  /** The variable's current value (local changes included), or undefined. */
  get<T = JsonValue>(key: string): T | undefined
  /** Sets a variable now; the server hears of it at the next `sync()`. Throws {@link SessionValueError} for non-JSON values. */
  set(key: string, value: unknown): void
  /** Removes a variable now; the server hears of it at the next `sync()`. */
  delete(this: void, key: string): void
  /** All variables; the same object until one of them changes. */
  getSnapshot(this: void): Readonly<Variables>
  /** Sync status; the same object until some field changes. */
  getStatus(this: void): SyncStatus
  /** Calls `listener` after any variable changes. Returns the unsubscribe function. */
  subscribe(listener: () => void): () => void
  /** Calls `listener` only when `key`'s value changes. Returns the unsubscribe function. */
  subscribe(key: string, listener: () => void): () => void
  /** Calls `listener` when the sync status changes. Returns the unsubscribe function. */
  subscribeStatus(this: void, listener: () => void): () => void
  /** Calls `listener` after each local `set`/`delete`: where a debounce schedules `sync()`. */
  onLocalWrite(listener: () => void): () => void
  /** Reads the local copy (once), takes over what closed tabs left unconfirmed, and resends it. */
  start(): Promise<void>
  /** Stops sending and writes the local copy now; `start()` resumes. */
  stop(): Promise<void>
  /** Fetches the server's snapshot and rebases local changes on it. Null when the server has none. */
  refresh(): Promise<SessionSnapshot | null>
  /** Sends pending changes now, or as soon as the request in flight is answered. */
  sync(): void
  /** For when the page hides or unloads: writes the local copy and sends what is unconfirmed with `keepalive`. */
  sendOnHide(): void
  /** Resolves when every change made before the call is confirmed; rejects with a {@link SessionError} when it cannot be. */
  flush(options?: { timeoutMs?: number }): Promise<void>
  /**
   * Flushes, then runs a server step on the stored variables as a run the server keeps
   * (`POST {endpoint}/{id}/runs`), and waits for its end however long it takes (no request
   * timeout on the wait): resolves with its output, its changes already in the view; rejects with
   * a `RunFailedError` (`step_failed`, `cancelled`, `timed_out`, `lost`) or a `SessionError` when
   * the run could not start. A reload during the run watches the same run; closing the page does
   * not cancel it.
   */
  run<Output = JsonValue>(step: string, input?: JsonValue): Promise<Output>
  /** Flushes, then starts a run of `step` and resolves with its record at once (running, or ended if quick). */
  startRun(step: string, input?: JsonValue): Promise<RunRecord>
  /** Waits for a run's end (long polls, no timeout on the wait); resolves with its final record. */
  watchRun(runId: string): Promise<RunRecord>
  /** Cancels a run: its step's signal fires, and nothing it returns is merged. Resolves with the record. */
  cancelRun(runId: string): Promise<RunRecord>
  /** Fetches the session's runs (`GET {endpoint}/{id}/runs`), newest first. */
  refreshRuns(): Promise<readonly RunRecord[]>
  /** The session's runs this page knows, newest first; the same array until one changes. */
  getRuns(this: void): readonly RunRecord[]
  /** Calls `listener` when a run this page knows changes (status, progress). */
  subscribeRuns(this: void, listener: () => void): () => void
  /** Tell the client whether the network is reachable (the React provider wires this). */
  setOnline(online: boolean): void
  /** Writes the local copy now. */
  persist(): Promise<void>
  /**
   * After sign-in: makes this session, started anonymously, the signed-in user's (`POST
   * {endpoint}/{id}/adopt`), once what was typed before is on the server. From then on only that
   * user reaches it, and it is in their `listSessions()`. Rejects with a `SessionError`
   * (`unauthenticated` when the server sees no user; `not_found` when another user owns it).
   */
  adopt(): Promise<void>
  /** The caller's sessions on the server (`GET {endpoint}`), newest first. */
  listSessions(): Promise<SessionSummary[]>
  /** Deletes a session on the server and this browser's copies of it. */
  deleteSession(sessionId: string): Promise<void>
  /**
   * For devtools (`workflow-session/devtools` calls it: use `inspectSession(client)` from there):
   * attaches the one probe that hears what the client does (null detaches it), and returns what
   * it may read. The client itself carries only the calls to it.
   */
  attachProbe(this: void, probe: ClientProbe | null): ClientInternals
}
