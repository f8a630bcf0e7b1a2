'use client'

import { useCallback, useEffect, useInsertionEffect, useRef, useSyncExternalStore } from 'react'

type Reads = Map<string, { read: () => unknown; seen: unknown }>

/**
 * Re-renders a component only when something it read during its last committed render changed.
 * Reads go through the returned `track(id, read)`; after any store change, each tracked `read()`
 * is compared (`Object.is`) with what that render saw. The snapshot React holds is a counter
 * bumped only then, so a first read never costs an extra render.
 */
export function useTracked(subscribe: (onChange: () => void) => () => void): {
  version: number
  track: <T>(id: string, read: () => T) => T
} {
  // Each render reads into a map of its own. React may throw a render away (StrictMode's extra
  // render, an interrupted transition, a suspended tree): its map is then simply dropped, and what
  // the subscription compares against is never touched during a render.
  const reads: Reads = new Map()
  const rendering = useRef(reads)
  // eslint-disable-next-line react-hooks/refs -- this render's own map, dropped with the render if React throws it away (see above)
  rendering.current = reads
  // The reads of the last committed render: the only ones the subscription compares. A read
  // outside render (an effect, a handler) lands here too once its render is committed, and adds.
  const committed = useRef<Reads>(new Map())
  useInsertionEffect(() => {
    committed.current = reads // an insertion effect: it runs on commit, and is a no-op on the server
  })

  const version = useRef(0)
  const notify = useRef<(() => void) | undefined>(undefined)
  const check = useCallback(() => {
    for (const { read, seen } of committed.current.values()) {
      if (!Object.is(read(), seen)) {
        version.current++
        notify.current?.()
        return
      }
    }
  }, [])
  const subscribeTracked = useCallback(
    (onChange: () => void) => {
      notify.current = onChange
      const unsubscribe = subscribe(check)
      return () => {
        notify.current = undefined
        unsubscribe()
      }
    },
    [subscribe, check],
  )
  const getVersion = () => version.current
  const seenVersion = useSyncExternalStore(subscribeTracked, getVersion, getVersion)
  // After each commit (on mount, after subscribing: effects run in order): what this render read
  // may have changed between the render and now, when nothing compared it yet.
  useEffect(check)

  const track = useCallback(<T>(id: string, read: () => T): T => {
    const seen = read()
    rendering.current.set(id, { read, seen })
    return seen
  }, [])
  return { version: seenVersion, track }
}
