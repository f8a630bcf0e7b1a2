'use client'

import { onlineManager, QueryClient, QueryClientContext, QueryClientProvider, useQuery, useQueryClient } from '@tanstack/react-query'
import { type ReactNode, startTransition, useCallback, useContext, useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react'
import { useDebouncedCallback } from 'use-debounce'
import type { LocalCopyStorage } from '../client/cache.js'
import { askBeforeLeavingUnsaved, wirePage } from '../client/connect.js'
import { createSessionClient, type SessionClient, type SessionClientOptions } from '../client/session-client.js'
import { randomId, rememberSessionId } from '../client/session-id.js'
import type { SyncStatus } from '../client/status.js'
import { endpointBase, type HeadersOption } from '../client/transport.js'
import type { RunRecord } from '../shared/protocol.js'
import { SessionContext, type SessionSwitch, SessionSwitchContext } from './context.js'

export interface SessionProviderProps {
  /** Where the session endpoints are mounted; default `/api/session`. */
  endpoint?: string
  /** Omit it to reuse the id this browser remembers, or start a new session. */
  sessionId?: string
  /**
   * With `sessionId` (controlled): called when `useSessions().open/start` picks another session;
   * update `sessionId` there. Without it, the provider switches by itself.
   */
  onSessionChange?: (sessionId: string) => void
  /** Recorded on the session as `workflowId`. */
  workflowId?: string
  /**
   * Optional capabilities, bundled only when imported: `liveUpdates()`, `tabSync()`,
   * `encryptedLocalCopy(key)`, `schemaValidation(schema)`. Read when the client is made (a new
   * array on each render does not make a new client).
   */
  plugins?: SessionClientOptions['plugins']
  /** Quiet time after the last change before the patch is sent; default 800 ms. */
  debounceMs?: number
  /** During continuous typing, a patch is sent at least this often; default 5000 ms. */
  maxWaitMs?: number
  /** A request without an answer fails (retryable) after this long; default 15 s. A run's wait is not a request timeout: a step may take minutes. */
  requestTimeoutMs?: number
  /** `flush()` (and so `run()`'s flush barrier) gives up after this long; default 30 s. */
  flushTimeoutMs?: number
  /** The app's QueryClient; default: the one of an enclosing QueryClientProvider, else a new one. */
  queryClient?: QueryClient
  fetch?: typeof fetch
  headers?: HeadersOption
  /** Where the local copy lives; default IndexedDB. */
  storage?: LocalCopyStorage
  /** Asks the browser to confirm leaving the page while changes are not yet on the server. */
  warnOnUnsavedChanges?: boolean
  /**
   * The app's schema (`defineMigrations`, the declaration the server's store has too): what this
   * device kept in an older version is migrated before it shows or is sent. Define it once, outside
   * components: another object makes another client.
   */
  migrations?: SessionClientOptions['migrations']
  /** The server is at another schema version than this page: show a way to reload (see `SessionClientOptions`). */
  onUpdateNeeded?: SessionClientOptions['onUpdateNeeded']
  /** Called on a 401; resolve `true` after refreshing credentials to retry (see `SessionClientOptions`). */
  onAuthError?: SessionClientOptions['onAuthError']
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

  // Function props may be new on every render; the client reads them through refs. They are
  // written during render on purpose: a client made in this render (below) must see this render's
  // props, and an effect would update them only after it. A render that React throws away leaves
  // props that are as good as the last committed ones.
  const fetchRef = useRef(props.fetch)
  const headersRef = useRef(props.headers)
  const onAuthErrorRef = useRef(props.onAuthError)
  const onUpdateNeededRef = useRef(props.onUpdateNeeded)
  const pluginsRef = useRef(props.plugins)
  /* eslint-disable react-hooks/refs -- the latest props, written during render: see above */
  pluginsRef.current = props.plugins
  fetchRef.current = props.fetch
  headersRef.current = props.headers
  onAuthErrorRef.current = props.onAuthError
  onUpdateNeededRef.current = props.onUpdateNeeded
  /* eslint-enable react-hooks/refs */
  const { storage, workflowId, client: givenClient, onSessionChange, requestTimeoutMs, flushTimeoutMs, migrations } = props
  const endpoint = endpointBase(props.endpoint)
  const [chosenId, setChosenId] = useState<string | undefined>(undefined)
  const sessionId = props.sessionId ?? chosenId
  // Ids `start()` made: no session exists under them until their first write, so none is fetched.
  const [madeHere] = useState(() => new Set<string>())
  const switchTo = useCallback(
    (id: string) => {
      rememberSessionId(endpoint, id, { isNew: madeHere.has(id) })
      if (onSessionChange) onSessionChange(id)
      else setChosenId(id)
    },
    [endpoint, onSessionChange, madeHere],
  )
  const sessionSwitch = useMemo<SessionSwitch>(
    () => ({
      open: switchTo,
      start: () => {
        const id = randomId()
        madeHere.add(id)
        switchTo(id)
        return id
      },
    }),
    [switchTo, madeHere],
  )
  // On the server there is no client: it would choose a session id (random numbers, storage),
  // which a server render must not touch (Next.js refuses them while it prerenders).
  const client = useMemo(
    () =>
      givenClient ??
      (typeof window === 'undefined'
        ? null
        : createSessionClient({
            endpoint,
            ...(sessionId !== undefined && { sessionId, newSession: madeHere.has(sessionId) }),
            ...(storage !== undefined && { storage }),
            ...(workflowId !== undefined && { workflowId }),
            ...(requestTimeoutMs !== undefined && { requestTimeoutMs }),
            ...(flushTimeoutMs !== undefined && { flushTimeoutMs }),
            // The plugins of the render that makes the client; a new array alone makes no new client.
            // eslint-disable-next-line react-hooks/refs -- read while the client is made, in this render: see above
            ...(pluginsRef.current !== undefined && { plugins: pluginsRef.current }),
            fetch: (input, init) => (fetchRef.current ?? globalThis.fetch)(input, init),
            headers: async () => {
              const headers = headersRef.current
              return (typeof headers === 'function' ? await headers() : headers) ?? {}
            },
            onAuthError: (error) => onAuthErrorRef.current?.(error),
            onUpdateNeeded: (versions) => onUpdateNeededRef.current?.(versions),
            ...(migrations !== undefined && { migrations }),
          })),
    [givenClient, endpoint, sessionId, storage, workflowId, madeHere, requestTimeoutMs, flushTimeoutMs, migrations],
  )
  // While React hydrates the server's HTML, the hooks read what the server rendered. The switch to
  // the client's own values is a transition, which React holds back while a part of the page it
  // reaches has still to hydrate: such a part (a Next.js page whose code arrives after the
  // layout's) may hydrate after the client has read the local copy, and must match the server's
  // HTML too. (React 19 does not hold it for a Suspense boundary rendered as a direct child of
  // the provider.)
  const hydrating = useSyncExternalStore(subscribeToNothing, isFalse, isTrue)
  const [asServer, setAsServer] = useState(hydrating)
  useEffect(() => {
    if (asServer) startTransition(() => setAsServer(false))
  }, [asServer])
  const shown = useMemo(
    () => (client && (givenClient || !asServer) ? client : serverRendered(endpoint, sessionId, client ?? undefined)),
    [client, givenClient, asServer, endpoint, sessionId],
  )

  const body = (
    <SessionSwitchContext.Provider value={sessionSwitch}>
      <SessionContext.Provider value={shown}>
        <SessionSync
          client={client ?? shown}
          debounceMs={props.debounceMs ?? 800}
          maxWaitMs={props.maxWaitMs ?? 5000}
          warnOnUnsavedChanges={props.warnOnUnsavedChanges ?? false}
        />
        {props.children}
      </SessionContext.Provider>
    </SessionSwitchContext.Provider>
  )
  return queryClient === appQueryClient ? body : <QueryClientProvider client={queryClient}>{body}</QueryClientProvider>
}

const subscribeToNothing = () => () => {}
const isFalse = () => false
const isTrue = () => true
const NOTHING = Object.freeze({})
const NOT_LOADED: SyncStatus = Object.freeze({
  isDirty: false,
  isSyncing: false,
  lastSyncedAt: null,
  pendingKeys: [],
  error: null,
  isOnline: true,
  isPersistent: true,
  isHydrated: false,
  version: 0,
  needsUpdate: false,
  setAside: [],
})

/**
 * The session as the server renders it: no variables (each hook shows its default) and the
 * status of a client that has loaded nothing yet, as the browser's client starts. While the page
 * hydrates, everything but these reads goes to the browser's `client`, so that a write or a step
 * run meanwhile is not lost; on the server there is none, and nothing is sent.
 */
function serverRendered(endpoint: string, sessionId = '', client?: SessionClient): SessionClient {
  return {
    ...(client ?? ON_THE_SERVER),
    sessionId,
    sessionIdRemembered: false,
    endpoint,
    clientId: '',
    get: () => undefined,
    getSnapshot: () => NOTHING,
    getStatus: () => NOT_LOADED,
  }
}

const ignore = () => {}
const NO_RUNS: readonly RunRecord[] = []
const done = async () => {}
const fromBrowser = () =>
  Promise.reject(new Error('workflow-session: the session is reached from the browser, not during the server render'))
const ON_THE_SERVER: Omit<
  SessionClient,
  'sessionId' | 'sessionIdRemembered' | 'endpoint' | 'clientId' | 'get' | 'getSnapshot' | 'getStatus'
> = {
  set: ignore,
  delete: ignore,
  subscribe: () => ignore,
  subscribeStatus: () => ignore,
  onLocalWrite: () => ignore,
  start: done,
  stop: done,
  persist: done,
  flush: done,
  sync: ignore,
  sendOnHide: ignore,
  setOnline: ignore,
  refresh: fromBrowser,
  run: fromBrowser,
  startRun: fromBrowser,
  watchRun: fromBrowser,
  cancelRun: fromBrowser,
  refreshRuns: fromBrowser,
  getRuns: () => NO_RUNS,
  subscribeRuns: () => ignore,
  adopt: fromBrowser,
  listSessions: fromBrowser,
  deleteSession: fromBrowser,
  attachProbe: () => {
    throw new Error("workflow-session: devtools attach to the browser's client, not to the server render")
  },
}

interface SessionSyncProps {
  client: SessionClient
  debounceMs: number
  maxWaitMs: number
  warnOnUnsavedChanges: boolean
}

/**
 * Wires the client to the page as `connectToPage` does for an app without React (the same
 * `wirePage`), handing it use-debounce's debounced send, TanStack Query's online state, and the
 * session query's refetch; the query itself is the server snapshot, visible in the app's devtools.
 * Only a new client or a new debounce wires it again (a stop and a start): the query client and
 * the unsaved-changes warning may change without that.
 */
function SessionSync({ client, debounceMs, maxWaitMs, warnOnUnsavedChanges }: SessionSyncProps) {
  const send = useDebouncedCallback(() => client.sync(), debounceMs, { maxWait: maxWaitMs })
  const queryClient = useQueryClient()
  const refetch = useRef(() => {})
  useEffect(() => {
    refetch.current = () => void queryClient.refetchQueries({ queryKey: queryKeyOf(client), exact: true })
  }, [client, queryClient])
  useEffect(() => {
    const disconnect = wirePage(client, { send, online: onlineManager, refresh: () => refetch.current(), warnOnUnsavedChanges: false })
    return () => void disconnect()
  }, [client, send])
  useEffect(() => (warnOnUnsavedChanges ? askBeforeLeavingUnsaved(client, window) : undefined), [client, warnOnUnsavedChanges])
  // Fetched on mount; the wiring above refetches it when the page shows again or the network is back.
  useQuery({
    queryKey: queryKeyOf(client),
    queryFn: () => client.refresh(),
    retry: 2,
    staleTime: 0,
    refetchOnWindowFocus: false,
    refetchOnReconnect: false,
  })
  return null
}
