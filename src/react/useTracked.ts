'use client'

import { useCallback, useRef, useSyncExternalStore } from 'react'

/**
 * Re-renders a component only when something it read during its last render changed. Reads go
 * through the returned `track(id, read)`; after any store change, each tracked `read()` is
 * compared (`Object.is`) with what the render saw. The snapshot React holds is a counter bumped
 * only then, so a first read never costs an extra render.
 */
export function useTracked(subscribe: (onChange: () => void) => () => void): { version: number; track: <T>(id: string, read: () => T) => T } {
  const probes = useRef(new Map<string, { read: () => unknown; seen: unknown }>())
  const version = useRef(0)
  // Each render starts afresh: only what this render reads is tracked.
  probes.current.clear()

  const subscribeTracked = useCallback(
    (onChange: () => void) => {
      const check = () => {
        for (const probe of probes.current.values()) {
          if (!Object.is(probe.read(), probe.seen)) {
            version.current++
            onChange()
            return
          }
        }
      }
      const unsubscribe = subscribe(check)
      check() // a change between render and subscribe
      return unsubscribe
    },
    [subscribe],
  )
  const getVersion = () => version.current
  const seenVersion = useSyncExternalStore(subscribeTracked, getVersion, getVersion)

  const track = useCallback(<T,>(id: string, read: () => T): T => {
    const seen = read()
    probes.current.set(id, { read, seen })
    return seen
  }, [])
  return { version: seenVersion, track }
}
