const STORAGE_PREFIX = 'workflow-session:id:'
/** Marks a remembered id whose session the server does not have yet (nothing was confirmed). */
const NEW_PREFIX = 'workflow-session:new:'

/**
 * Where a client remembers its session id between loads: a small part of the Web Storage API.
 * `localStorage` in browsers (the default); in Node, pass your own or nothing is remembered.
 *
 * @example
 * const ids = new Map<string, string>()
 * createSessionClient({ sessionIdStorage: { getItem: (k) => ids.get(k) ?? null, setItem: (k, v) => ids.set(k, v), removeItem: (k) => ids.delete(k) } })
 */
export interface SessionIdStorage {
  getItem(key: string): string | null
  setItem(key: string, value: string): void
  removeItem(key: string): void
}

export interface ResolvedSessionId {
  sessionId: string
  /** Made here and never confirmed by the server: there is no session to fetch yet. */
  isNew: boolean
}

/**
 * The session id to use: the given one, else the one `storage` remembers for `endpoint`, else a
 * new random id (144 random bits) that is remembered for the next load.
 */
function resolveSessionId(endpoint: string, given: string | undefined, storage: SessionIdStorage | null): ResolvedSessionId {
  if (given) return { sessionId: given, isNew: false }
  const remembered = attempt(() => storage?.getItem(STORAGE_PREFIX + endpoint))
  if (remembered) return { sessionId: remembered, isNew: attempt(() => storage?.getItem(NEW_PREFIX + endpoint)) === remembered }
  const sessionId = randomId()
  attempt(() => {
    storage?.setItem(STORAGE_PREFIX + endpoint, sessionId)
    storage?.setItem(NEW_PREFIX + endpoint, sessionId)
  })
  return { sessionId, isNew: true }
}

/** The server confirmed a change of `sessionId`: it exists now, and a later load may fetch it. */
function markSessionCreated(endpoint: string, sessionId: string, storage: SessionIdStorage | null): void {
  attempt(() => {
    if (storage?.getItem(NEW_PREFIX + endpoint) === sessionId) storage.removeItem(NEW_PREFIX + endpoint)
  })
}

/** A client's session id, and whether the server may have a session under it yet. */
export function sessionIdentity(
  endpoint: string,
  options: { sessionId?: string; newSession?: boolean; sessionIdStorage?: SessionIdStorage | null },
) {
  // Looked up only when needed: a server render with a given id touches no localStorage.
  const storage = () => (options.sessionIdStorage === undefined ? defaultSessionIdStorage() : options.sessionIdStorage)
  const { sessionId, isNew } = resolveSessionId(endpoint, options.sessionId, options.sessionId ? null : storage())
  let serverHasNone = isNew || options.newSession === true
  return {
    sessionId,
    /** The id is kept for the next load (the app did not choose it, and something remembers it). */
    remembered: !options.sessionId && storage() !== null,
    /** Made here and nothing confirmed yet: a GET could only answer 404. */
    serverHasNone: () => serverHasNone,
    /** The server has the session now. */
    exists(): void {
      if (serverHasNone) markSessionCreated(endpoint, sessionId, storage())
      serverHasNone = false
    },
  }
}

/**
 * Makes `sessionId` the one this browser reuses for `endpoint`. `isNew`: the id was just made
 * and the server has no session under it yet (nothing is fetched for it until its first write).
 */
export function rememberSessionId(
  endpoint: string,
  sessionId: string,
  { isNew = false, storage = defaultSessionIdStorage() }: RememberOptions = {},
): void {
  attempt(() => {
    storage?.setItem(STORAGE_PREFIX + endpoint, sessionId)
    if (isNew) storage?.setItem(NEW_PREFIX + endpoint, sessionId)
    else storage?.removeItem(NEW_PREFIX + endpoint)
  })
}

export interface RememberOptions {
  isNew?: boolean
  /** Default: `localStorage` where there is one. */
  storage?: SessionIdStorage | null
}

/** Forgets the remembered session id of `endpoint`, so the next client starts a new session. */
export function forgetSessionId(endpoint: string, storage: SessionIdStorage | null = defaultSessionIdStorage()): void {
  attempt(() => {
    storage?.removeItem(STORAGE_PREFIX + endpoint)
    storage?.removeItem(NEW_PREFIX + endpoint)
  })
}

/**
 * The page's `localStorage` (browsers), else null: nothing is remembered. Looked up through
 * `window`: Node 25+ has a global `localStorage` of its own that prints a warning each time it is
 * looked at unless Node was started with `--localstorage-file` (pass it as `sessionIdStorage`
 * to use it).
 */
function defaultSessionIdStorage(): SessionIdStorage | null {
  return attempt(() => (globalThis as { window?: { localStorage?: SessionIdStorage } }).window?.localStorage) ?? null
}

/** Web Storage access can throw (sandboxed iframes, some private modes, a full quota): then nothing is remembered. */
function attempt<T>(work: () => T): T | undefined {
  try {
    return work()
  } catch {
    return undefined
  }
}

/** A new random id: 18 random bytes as 24 base64url characters (144 bits). */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18))
  let text = ''
  for (const byte of bytes) text += String.fromCharCode(byte)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_')
}
