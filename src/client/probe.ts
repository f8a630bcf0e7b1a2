import type { SessionSnapshot } from '../shared/protocol.js'
import type { Change } from './changes.js'
import type { SessionError } from './errors.js'
import type { LeftByPage } from './tabs.js'
import type { QueuedPatch } from './view.js'

/**
 * What the client tells a probe, where it happens: a local write, a patch sent, confirmed,
 * failed (`retryAt`: when it is sent again, or null) or refused, a snapshot taken from
 * elsewhere, the online state, a write of the local copy, and the change stream's connection.
 */
export type ProbeEvent =
  | [type: 'write', key: string]
  | [type: 'send', patch: QueuedPatch, keepalive: boolean]
  | [type: 'confirmed', patch: QueuedPatch, snapshot: SessionSnapshot]
  | [type: 'failed', patch: QueuedPatch, failure: SessionError, retryAt: number | null]
  | [type: 'refused', patch: QueuedPatch, failure: SessionError]
  | [type: 'received', snapshot: SessionSnapshot]
  | [type: 'online', online: boolean]
  | [type: 'saved', ok: boolean]
  | [type: 'feed', change: FeedChange]

/** How the change stream goes: a connection opened or ended (`error`: why), or the version an event brought. */
export type FeedChange = { connected: boolean; error?: string } | { version: number }

/**
 * Devtools' hook into a client (`workflow-session/devtools` attaches one): it hears what the
 * client does and may answer requests instead of the network or hold the client offline. The
 * client carries only the calls to it; what is made of them is the devtools' code, in their entry.
 */
export interface ClientProbe {
  event(...event: ProbeEvent): void
  /** A failure made on purpose for this request (it then never leaves), or undefined. */
  fault(url: string, method: string): Response | undefined
  /** Holds the client offline: the browser's online state does not count while true. */
  readonly offline: boolean
}

/** What a probe may read of the client: its layers and parts, as they are when called. */
export interface ClientInternals {
  base(): SessionSnapshot | null
  /** Changes not yet in a patch. */
  pending(): ReadonlyMap<string, Change>
  /** Patches with a seq, oldest first; the first is the one being sent. */
  queue(): readonly QueuedPatch[]
  /** Whether `key` shows a change the server refused. */
  isRefused(key: string): boolean
  /** A request is on its way. */
  isSending(): boolean
  /** The local copy: in memory because the storage refused (`fallback`), the app's own `storage`, whether it persists. */
  localCopy(): { fallback: boolean; custom: boolean; persistent: boolean }
  /** What other pages left on the device, read at start (null before). */
  leftByPages(): readonly LeftByPage[] | null
  /** Whether the page has Web Locks, and holds its own. */
  lock(): { locks: boolean; held: boolean }
  /** The online state the page last reported (`setOnline`, the browser's), held offline or not; undefined before any. */
  reportedOnline(): boolean | undefined
  /** The client ids of the pages open now (holding their lock). */
  livePages(): Promise<Set<string>>
  /** The names of the plugins the client was given. */
  plugins: readonly string[]
  /** Deletes this device's copy of the session (base, every page's outbox, runs). */
  forgetLocalCopy(): Promise<void>
}
