import type { SessionError } from './errors.js'

/** What a person may want to see about the session's sync: read with `useSyncStatus()` or `client.getMeta()`. */
export interface SyncStatus {
  /** Some change is not yet confirmed by the server. */
  isDirty: boolean
  /** A request is on its way. */
  isSyncing: boolean
  /** When the server last confirmed a change or sent the session (ms since epoch), or null. */
  lastSyncedAt: number | null
  /** Names of the variables with unconfirmed changes. */
  pendingKeys: readonly string[]
  /** The last failure; cleared by the next success. Retryable ones are being retried. */
  error: SessionError | null
  /** Whether the client believes it can reach the network. */
  isOnline: boolean
  /** Whether changes are kept on this device (false: IndexedDB unavailable, kept in memory only). */
  isPersistent: boolean
  /** The local copy has been read: values on screen are the last known ones, not defaults. */
  isHydrated: boolean
  /** The server version the local view is based on (0: none yet). */
  version: number
}

/** Every field compares by identity: the client hands out the same `pendingKeys` array until the set of keys changes. */
/** @deprecated The same type under its old name: use {@link SyncStatus}. */
export type SessionMeta = SyncStatus

export function sameMeta(a: SyncStatus, b: SyncStatus): boolean {
  for (const field in a) if (a[field as keyof SyncStatus] !== b[field as keyof SyncStatus]) return false
  return true
}
