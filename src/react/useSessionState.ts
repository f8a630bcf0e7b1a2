'use client'

import { useCallback, useMemo } from 'react'
import type { SyncStatus } from '../client/status.js'
import type { JsonValue, Variables } from '../shared/protocol.js'
import { useSessionClient } from './context.js'
import { useTracked } from './useTracked.js'
import { applySetValue, type SetValue } from './useVariable.js'

/**
 * The session as the session-state spec defines it (`{ sessionId, variables, meta }`), with the
 * methods that change it.
 */
export interface SessionState {
  sessionId: string
  /** Every variable. Reading it makes the component render on any variable's change. */
  variables: Readonly<Variables>
  /**
   * The sync status: the spec's `lastSyncedAt` and `isDirty`, with `isSyncing`, `pendingKeys`,
   * `error`, `isOnline`, `isPersistent`, `isHydrated` and `version` (see `SyncStatus`). Reading it
   * makes the component render when the status changes.
   */
  meta: SyncStatus
  /** @deprecated The same object as `meta`, the spec's name; `status` goes in the next minor release. */
  status: SyncStatus
  /** Reading a variable makes the component render when that variable changes. */
  getVariable<T = JsonValue>(key: string): T | undefined
  setVariable<T = JsonValue>(key: string, value: SetValue<T | undefined>): void
  deleteVariable(key: string): void
  /** Resolves when every change made before the call is on the server. */
  flush(): Promise<void>
}

/**
 * The whole session. The component renders again only for what it read in its last committed
 * render: `variables` (any change), `meta` (status changes), `getVariable(key)` (that key),
 * methods alone (never).
 *
 * @example
 * const { meta, setVariable, flush } = useSessionState()
 * <button onClick={() => setVariable('step', 2)}>Next</button> {meta.isDirty && 'Saving…'}
 */
export function useSessionState(): SessionState {
  const client = useSessionClient()
  const subscribe = useCallback(
    (onChange: () => void) => {
      const offVariables = client.subscribe(onChange)
      const offStatus = client.subscribeStatus(onChange)
      return () => {
        offVariables()
        offStatus()
      }
    },
    [client],
  )
  const { version, track } = useTracked(subscribe)

  return useMemo(
    () => ({
      sessionId: client.sessionId,
      get variables() {
        return track('variables', client.getSnapshot)
      },
      get meta() {
        return track('meta', client.getStatus)
      },
      get status() {
        return track('meta', client.getStatus)
      },
      getVariable: <T>(key: string) => track(`key:${key}`, () => client.get<T>(key)),
      setVariable: <T>(key: string, value: SetValue<T | undefined>) => client.set(key, applySetValue(value, client.get<T>(key))),
      deleteVariable: client.delete,
      flush: () => client.flush(),
    }),
    // A new object whenever what this component read changed (safe to use in effect deps).
    // eslint-disable-next-line react-hooks/exhaustive-deps -- `version` is what makes that new object
    [client, track, version],
  )
}
