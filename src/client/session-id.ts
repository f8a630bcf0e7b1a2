const STORAGE_PREFIX = 'workflow-session:id:'

/**
 * The session id to use: the given one, else the one this browser remembers for `endpoint`,
 * else a new random id (144 random bits) that is remembered for the next load.
 */
export function resolveSessionId(endpoint: string, given?: string): string {
  if (given) return given
  const storage = localStorageOrNull()
  const remembered = storage?.getItem(STORAGE_PREFIX + endpoint)
  if (remembered) return remembered
  const id = randomId()
  storage?.setItem(STORAGE_PREFIX + endpoint, id)
  return id
}

/** Makes `sessionId` the one this browser reuses for `endpoint`. */
export function rememberSessionId(endpoint: string, sessionId: string): void {
  localStorageOrNull()?.setItem(STORAGE_PREFIX + endpoint, sessionId)
}

/** Forgets the remembered session id of `endpoint`, so the next client starts a new session. */
export function forgetSessionId(endpoint: string): void {
  localStorageOrNull()?.removeItem(STORAGE_PREFIX + endpoint)
}

function localStorageOrNull(): Storage | null {
  try {
    return (globalThis as { localStorage?: Storage }).localStorage ?? null
  } catch {
    // Access can throw (sandboxed iframes, some private modes): then nothing is remembered.
    return null
  }
}

/** A new random id: 18 random bytes as 24 base64url characters (144 bits). */
export function randomId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(18))
  let text = ''
  for (const byte of bytes) text += String.fromCharCode(byte)
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_')
}
