import type { JsonValue, RunDelta, RunRecord, SessionSnapshot } from '../shared/protocol.js'
import type { LocalCopyStorage } from './cache.js'
import type { FeedChange } from './probe.js'

/**
 * An optional capability of the client, passed in `plugins`: an app bundles only the ones it
 * imports (`liveUpdates`, `tabSync`, `encryptedLocalCopy`, `schemaValidation`).
 */
export interface SessionPlugin {
  /** For error messages and dev tools. */
  readonly name: string
  /** Why `value` may not be stored under `key`, or null: `set` throws a `SessionValueError` with it. */
  validate?(key: string, value: JsonValue): string | null
  /** Wraps where the local copy is kept (say, to encrypt it). */
  wrapStorage?(storage: LocalCopyStorage): LocalCopyStorage
  /** Runs once the local copy is read, at each `start()`; the function it returns runs at `stop()`. */
  start?(session: PluginSession): () => void
}

/** What a plugin's `start` may use of the client. */
export interface PluginSession {
  readonly sessionId: string
  readonly clientId: string
  /** The name the session's records on this device share (`{endpoint}|{sessionId}`). */
  readonly sessionKey: string
  /** The server version this page's view is based on (0: none yet). */
  version(): number
  /** The server's snapshot this page's view is based on (null: none yet). */
  base(): SessionSnapshot | null
  /** A snapshot from elsewhere (another tab, the change stream): taken when newer, under the local edits. */
  receive(snapshot: SessionSnapshot): void
  /**
   * A run's record from elsewhere (the change stream): its status and progress show in the hooks.
   * A run delta completes the record this page holds; false when it holds none to complete.
   */
  receiveRun(run: RunRecord | RunDelta): boolean
  /** Calls `listener` with each snapshot this page took from the server's answers (acks, steps). */
  onConfirmed(listener: (snapshot: SessionSnapshot) => void): () => void
  /**
   * Opens the change stream (`GET {endpoint}/{id}/events`) after what the page holds (`since`: a
   * snapshot, or a version; null for nothing). A client that reads deltas gets `event: delta`
   * there: each applies to the snapshot before it on the stream (the first to `since`).
   */
  events(since: SessionSnapshot | number | null, signal: AbortSignal): Promise<Response>
  /** The client's retry backoff. */
  readonly retry: { baseMs: number; maxMs: number }
  /** Tells devtools how the change stream goes: a connection opened or ended (`error`: why), or the version an event brought. */
  feed(change: FeedChange): void
}

/** Starts each plugin that has a `start`; returns the functions that stop them. */
export function startPlugins(plugins: readonly SessionPlugin[], session: PluginSession): Array<() => void> {
  return plugins.flatMap((plugin) => (plugin.start ? [plugin.start(session)] : []))
}
