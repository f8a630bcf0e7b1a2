import { QueryClient, QueryClientContext, QueryClientProvider, onlineManager, useQuery } from '@tanstack/react-query'
import { useContext, useEffect, useMemo, useRef, useState, type ReactNode } from 'react'
import { useDebouncedCallback } from 'use-debounce'
import type { CacheStorage } from '../client/cache.js'
import { createSessionClient, type SessionClient } from '../client/session-client.js'
import type { HeadersOption } from '../client/transport.js'
import { SessionContext } from './context.js'

export interface SessionProviderProps {
  /** Where the session endpoints are mounted; default `/api/session`. */
  endpoint?: string
  /** Omit it to reuse the id this browser remembers, or start a new session. */
  sessionId?: string
  /** Quiet time after the last change before the patch is sent; default 800 ms. */
  debounceMs?: number
  /** During continuous typing, a patch is sent at least this often; default 5000 ms. */
  maxWaitMs?: number
  /** The app's QueryClient; default: the one of an enclosing QueryClientProvider, else a new one. */
  queryClient?: QueryClient
  fetch?: typeof fetch
  headers?: HeadersOption
  /** Where the local copy lives; default IndexedDB. */
  storage?: CacheStorage
  /** A client you made yourself (tests, stories); the other client options are then ignored. */
  client?: SessionClient
  children?: ReactNode
}

const queryKeyOf = (client: SessionClient) => ['workflow-session', client.endpoint, client.sessionId] as const

/**
 * Gives its children a session: the hooks of this package read and write its variables.
 *
 * @example
 * <SessionProvider endpoint="/api/session">
 *   <SignupForm />
 * </SessionProvider>
 */
export function SessionProvider(props: SessionProviderProps) {
  const appQueryClient = useContext(QueryClientContext)
  const [ownQueryClient] = useState(() => ((props.queryClient ?? appQueryClient) ? null : new QueryClient()))
  const queryClient = props.queryClient ?? appQueryClient ?? ownQueryClient!

  // Function props may be new on every render; the client reads them through refs.
  const fetchRef = useRef(props.fetch)
  const headersRef = useRef(props.headers)
  fetchRef.current = props.fetch
  headersRef.current = props.headers
  const { endpoint, sessionId, storage, client: givenClient } = props
  const client = useMemo(
    () =>
      givenClient ??
      createSessionClient({
        ...(endpoint !== undefined && { endpoint }),
        ...(sessionId !== undefined && { sessionId }),
        ...(storage !== undefined && { storage }),
        fetch: (input, init) => (fetchRef.current ?? globalThis.fetch)(input, init),
        headers: async () => {
          const headers = headersRef.current
          return (typeof headers === 'function' ? await headers() : headers) ?? {}
        },
      }),
    [givenClient, endpoint, sessionId, storage],
  )

  const body = (
    <SessionContext.Provider value={client}>
      <SessionSync client={client} debounceMs={props.debounceMs ?? 800} maxWaitMs={props.maxWaitMs ?? 5000} />
      {props.children}
    </SessionContext.Provider>
  )
  return queryClient === appQueryClient ? body : <QueryClientProvider client={queryClient}>{body}</QueryClientProvider>
}

/** Wires the client to the page: start, debounced sends, online state, and the server snapshot query. */
function SessionSync({ client, debounceMs, maxWaitMs }: { client: SessionClient; debounceMs: number; maxWaitMs: number }) {
  const sync = useDebouncedCallback(() => client.sync(), debounceMs, { maxWait: maxWaitMs, flushOnExit: true })

  useEffect(() => {
    void client.start()
    return () => void client.stop()
  }, [client])

  useEffect(() => client.onLocalWrite(sync), [client, sync])

  useEffect(() => {
    client.setOnline(onlineManager.isOnline())
    return onlineManager.subscribe((online) => client.setOnline(online))
  }, [client])

  useEffect(() => {
    // The cache must be current before a tab can close.
    const persist = () => void client.persist()
    const onVisibility = () => document.visibilityState === 'hidden' && persist()
    document.addEventListener('visibilitychange', onVisibility)
    window.addEventListener('pagehide', persist)
    return () => {
      document.removeEventListener('visibilitychange', onVisibility)
      window.removeEventListener('pagehide', persist)
    }
  }, [client])

  // The server snapshot as a query: fetched on mount, refetched on focus and reconnect.
  useQuery({ queryKey: queryKeyOf(client), queryFn: () => client.refresh(), retry: 2, staleTime: 0 })
  return null
}
