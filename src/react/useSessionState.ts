import { useCallback, useMemo, useRef, useSyncExternalStore } from 'react'
import type { SessionMeta } from '../client/meta.js'
import type { JsonValue, Variables } from '../shared/protocol.js'
import { useSessionClient } from './context.js'
import { applySetValue, type SetValue } from './hooks.js'

export interface SessionState {
  sessionId: string
  /** Every variable. Reading it makes the component render on any variable's change. */
  variables: Readonly<Variables>
  /** Sync status. Reading it makes the component render when the status changes. */
  meta: SessionMeta
  getVariable<T = JsonValue>(key: string): T | undefined
  setVariable<T = JsonValue>(key: string, value: SetValue<T | undefined>): void
  deleteVariable(key: string): void
  /** Resolves when every change made before the call is on the server. */
  flush(): Promise<void>
}

/**
 * The whole session. The component renders again only for what it reads: `variables` (any
 * change), `meta` (status changes), neither (methods only: never).
 *
 * @example
 * const { meta, setVariable, flush } = useSessionState()
 * <button onClick={() => setVariable('step', 2)}>Next</button> {meta.isDirty && 'Saving…'}
 */
export function useSessionState(): SessionState {
  const client = useSessionClient()
  // Which fields this component read during its last render (as TanStack Query tracks results).
  const tracked = useRef({ variables: false, meta: false })
  const last = useRef<{ variables: unknown; meta: unknown } | null>(null)

  const subscribe = useCallback(
    (listener: () => void) => {
      const offVariables = client.subscribe(listener)
      const offMeta = client.subscribeMeta(listener)
      return () => {
        offVariables()
        offMeta()
      }
    },
    [client],
  )
  const getTracked = useCallback(() => {
    const variables = tracked.current.variables ? client.getSnapshot() : null
    const meta = tracked.current.meta ? client.getMeta() : null
    if (last.current?.variables === variables && last.current?.meta === meta) return last.current
    return (last.current = { variables, meta })
  }, [client])
  const seen = useSyncExternalStore(subscribe, getTracked, getTracked)

  return useMemo(
    () => ({
      sessionId: client.sessionId,
      get variables() {
        tracked.current.variables = true
        return client.getSnapshot()
      },
      get meta() {
        tracked.current.meta = true
        return client.getMeta()
      },
      getVariable: client.get,
      setVariable: <T>(key: string, value: SetValue<T | undefined>) =>
        client.set(key, applySetValue(value, client.get<T>(key))),
      deleteVariable: client.delete,
      flush: () => client.flush(),
    }),
    // A new object whenever what this component reads changed (safe to use in effect deps).
    [client, seen],
  )
}
