import { Listeners } from '../shared/listeners.js'
import { asSessionError, type SessionError } from './errors.js'
import type { LayeredView } from './view.js'

/** What a person may want to see about the session's sync: read with `useSyncStatus()` or `client.getStatus()`. */
export interface SyncStatus {
  /** Some change is not yet confirmed by the server. */
  isDirty: boolean
  /** A request is on its way. */
  isSyncing: boolean
  /** When the server last confirmed a change or sent the session (ms since epoch), or null. */
  lastSyncedAt: number | null
  /** Names of the variables with unconfirmed changes (the same array until that set changes). */
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

/**
 * The client's sync status, kept up to date: `update()` after anything that may change it makes
 * a new object (and tells the listeners) only when a field really changed, so a keystroke that
 * changes no field costs a few comparisons and no allocation.
 */
export function createStatus(view: LayeredView, isSending: () => boolean, isPersistent: () => boolean) {
  let error: SessionError | null = null
  let lastSyncedAt: number | null = null
  const online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true
  // As made: nothing read, sent or failed yet (so `isSending` and `isPersistent` are not asked
  // before the parts that answer them exist).
  const initial: SyncStatus = {
    isDirty: false,
    isSyncing: false,
    lastSyncedAt,
    pendingKeys: view.unconfirmedKeys(),
    error,
    isOnline: online,
    isPersistent: true,
    isHydrated: false,
    version: 0,
  }
  const status = {
    online,
    hydrated: false,
    current: initial,
    listeners: new Listeners(),
    /** Takes `failure` as the last error (when given), then refreshes the status; returns the failure as a SessionError. */
    update(failure?: unknown): SessionError | undefined {
      const failed = failure === undefined ? undefined : (error = asSessionError(failure))
      const pendingKeys = view.unconfirmedKeys()
      const isSyncing = isSending()
      const persistent = isPersistent()
      const version = view.base?.version ?? 0
      const now = status.current
      if (
        now.pendingKeys === pendingKeys &&
        now.isSyncing === isSyncing &&
        now.error === error &&
        now.lastSyncedAt === lastSyncedAt &&
        now.isOnline === status.online &&
        now.isPersistent === persistent &&
        now.isHydrated === status.hydrated &&
        now.version === version
      ) {
        return failed
      }
      status.current = {
        isDirty: pendingKeys.length > 0,
        isSyncing,
        lastSyncedAt,
        pendingKeys,
        error,
        isOnline: status.online,
        isPersistent: persistent,
        isHydrated: status.hydrated,
        version,
      }
      status.listeners.notify()
      return failed
    },
    /** The server answered: the last sync is now, and (`clearError`) the last failure is over. */
    succeeded(clearError: boolean): void {
      lastSyncedAt = Date.now()
      if (clearError) error = null
      status.update()
    },
  }
  return status
}
