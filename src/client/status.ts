import { Listeners } from '../shared/listeners.js'
import { asSessionError, type SessionError } from './errors.js'

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
  /**
   * The server is at another schema version than this page (docs/protocol.md, "Schema
   * versions"): reload to update the page. Edits are kept; those the server refused wait for it.
   */
  needsUpdate: boolean
  /**
   * Variables a migration set aside because the app's schema refuses their migrated values
   * (kept under `ws:setAside` with the schema's message: show them, fix them, or delete them).
   */
  setAside: readonly string[]
}

/** The fields the parts of the client set; `isDirty` follows from `pendingKeys`. */
export type StatusFields = Partial<Omit<SyncStatus, 'isDirty'>>

/**
 * The client's sync status: a small store, made before every other part of the client, which
 * each part tells what it knows (the view its unconfirmed keys and version, the sender whether a
 * request is on its way and how the last one failed, the local copy whether it reaches the
 * device, the client the online state). A setter makes a new object, and tells the listeners,
 * only when a field really changed; `layers` (on every keystroke) allocates nothing then.
 */
export function createStatus() {
  const online = (globalThis as { navigator?: { onLine?: boolean } }).navigator?.onLine ?? true
  // As made: nothing read, sent or failed yet.
  let current: SyncStatus = {
    isDirty: false,
    isSyncing: false,
    lastSyncedAt: null,
    pendingKeys: [],
    error: null,
    isOnline: online,
    isPersistent: true,
    isHydrated: false,
    version: 0,
    needsUpdate: false,
    setAside: [],
  }
  const listeners = new Listeners()
  const commit = (next: SyncStatus) => {
    current = next
    listeners.notify()
  }
  return {
    get current(): SyncStatus {
      return current
    },
    listeners,
    /** Sets the given fields. */
    set(fields: StatusFields): void {
      for (const name of Object.keys(fields) as Array<keyof StatusFields>) {
        if (!Object.is(fields[name], current[name])) {
          const next = { ...current, ...fields }
          commit({ ...next, isDirty: next.pendingKeys.length > 0 })
          return
        }
      }
    },
    /** The view's unconfirmed keys (the same array until that set changes) and base version. */
    layers(pendingKeys: readonly string[], version: number): void {
      if (pendingKeys !== current.pendingKeys || version !== current.version) {
        commit({ ...current, pendingKeys, version, isDirty: pendingKeys.length > 0 })
      }
    },
    /** Takes `failure` as the last error; returns it as a SessionError. */
    failed(failure: unknown, fields: StatusFields = {}): SessionError {
      const error = asSessionError(failure)
      this.set({ ...fields, error })
      return error
    },
    /** The server answered: the last sync is now, and (`clearError`) the last failure is over. */
    synced(clearError: boolean, fields: StatusFields = {}): void {
      this.set({ ...fields, lastSyncedAt: Date.now(), ...(clearError && { error: null }) })
    },
  }
}
