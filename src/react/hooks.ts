'use client'

import { useMutation } from '@tanstack/react-query'
import { useCallback, useRef, useSyncExternalStore } from 'react'
import type { SessionError } from '../client/errors.js'
import type { SessionMeta } from '../client/meta.js'
import type { JsonValue } from '../shared/protocol.js'
import { useSessionClient } from './context.js'

/** A value, or a function from the current value to the next (as with `useState`). */
export type SetValue<T> = T | ((current: T) => T)

/** The value a {@link SetValue} stands for, given the current value. */
export function applySetValue<T>(next: SetValue<T>, current: T): T {
  return typeof next === 'function' ? (next as (current: T) => T)(current) : next
}

/**
 * One session variable, like `useState`: the component renders again only when this
 * variable changes. Writes show at once and reach the server in the next debounced patch.
 *
 * @example
 * const [email, setEmail] = useVariable<string>('email', '')
 * <input value={email} onChange={(event) => setEmail(event.target.value)} />
 */
export function useVariable<T>(key: string, defaultValue: T): [T, (next: SetValue<T>) => void]
export function useVariable<T>(key: string): [T | undefined, (next: SetValue<T | undefined>) => void]
export function useVariable<T>(key: string, defaultValue?: T) {
  const client = useSessionClient()
  const subscribe = useCallback((listener: () => void) => client.subscribe(key, listener), [client, key])
  const read = () => client.get<T>(key)
  const stored = useSyncExternalStore(subscribe, read, read)
  const defaultRef = useRef(defaultValue)
  defaultRef.current = defaultValue
  const setValue = useCallback(
    (next: SetValue<T | undefined>) => {
      client.set(key, applySetValue(next, client.get<T>(key) ?? defaultRef.current))
    },
    [client, key],
  )
  return [stored === undefined ? defaultValue : stored, setValue]
}

/**
 * The sync status alone: renders only when it changes.
 *
 * @example
 * const { isDirty, isSyncing, error } = useSyncStatus()
 * return <span>{error ? 'Not saved' : isDirty ? 'Saving…' : 'Saved'}</span>
 */
export function useSyncStatus(): SessionMeta {
  const client = useSessionClient()
  return useSyncExternalStore(client.subscribeMeta, client.getMeta, client.getMeta)
}

export interface UseRunResult<Output> {
  /** Flushes pending changes, then runs the step; errors land in `error`, not in a rejection. */
  run: (input?: JsonValue) => void
  /** As `run`, but resolves with the output and rejects with the error. */
  runAsync: (input?: JsonValue) => Promise<Output>
  isRunning: boolean
  /** The last run's output, until the next run starts. */
  output: Output | undefined
  /** Why the last run failed: the flush (the step was then not called) or the step itself. */
  error: SessionError | Error | null
  reset: () => void
}

/**
 * A server step of the workflow. `run()` first waits until every change made before it is on
 * the server, so the step always sees what the person typed.
 *
 * @example
 * const { run, isRunning, output, error } = useRun<{ total: number }>('checkout')
 * <button onClick={() => run()} disabled={isRunning}>Check out</button>
 */
export function useRun<Output = JsonValue>(step: string): UseRunResult<Output> {
  const client = useSessionClient()
  const mutation = useMutation<Output, SessionError | Error, JsonValue | undefined>({
    mutationKey: ['workflow-session', 'run', client.sessionId, step],
    mutationFn: (input) => client.run<Output>(step, input),
  })
  const { mutate, mutateAsync } = mutation
  return {
    run: useCallback((input?: JsonValue) => mutate(input), [mutate]),
    runAsync: useCallback((input?: JsonValue) => mutateAsync(input), [mutateAsync]),
    isRunning: mutation.isPending,
    output: mutation.data,
    error: mutation.error,
    reset: mutation.reset,
  }
}
