'use client'

import { useCallback, useRef, useSyncExternalStore } from 'react'
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
  // eslint-disable-next-line react-hooks/refs -- the latest default, for a setter that stays the same function across renders
  defaultRef.current = defaultValue
  const setValue = useCallback(
    (next: SetValue<T | undefined>) => {
      client.set(key, applySetValue(next, client.get<T>(key) ?? defaultRef.current))
    },
    [client, key],
  )
  return [stored === undefined ? defaultValue : stored, setValue]
}
