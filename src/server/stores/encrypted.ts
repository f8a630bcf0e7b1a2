import { importAesKey, type KeyMaterial, open, seal } from '../../shared/crypto.js'
import type { JsonValue } from '../../shared/protocol.js'
import { withCodec } from './define.js'
import type { SessionStore } from './types.js'

export interface EncryptedStoreOptions {
  /** Keys by id. Old ids stay here as long as values sealed with them may be read. */
  keys: Record<string, KeyMaterial>
  /** The id of the key new values are sealed with. */
  currentKeyId: string
}

/** How a sealed value is stored: the key id travels with it, for rotation. */
interface Envelope {
  '~enc': string
  iv: string
  data: string
}

const isEnvelope = (value: JsonValue | undefined): value is JsonValue & Envelope =>
  typeof value === 'object' &&
  value !== null &&
  !Array.isArray(value) &&
  typeof value['~enc'] === 'string' &&
  typeof value.iv === 'string' &&
  typeof value.data === 'string'

/**
 * Encrypts variable values at rest (AES-256-GCM, WebCrypto) around any store, so files, SQLite
 * rows and PostgreSQL rows hold ciphertext. Each value is sealed on its own, bound to its session
 * and variable name, and records its key id: add a new key as `currentKeyId` to rotate, keep the
 * old one in `keys` while old values remain. Variable names, versions and times stay readable
 * (the store needs them to merge, list and expire); the size limit counts sealed bytes.
 *
 * @example
 * const store = encryptedStore(await openStore('sqlite:.data/sessions.db'), {
 *   keys: { k2: process.env.SESSION_KEY_2!, k1: process.env.SESSION_KEY_1! }, currentKeyId: 'k2',
 * })
 */
export function encryptedStore(inner: SessionStore, options: EncryptedStoreOptions): SessionStore {
  if (!Object.hasOwn(options.keys, options.currentKeyId))
    throw new Error(`encryptedStore: no key with id "${options.currentKeyId}" among the keys given`)
  const imported = new Map<string, Promise<CryptoKey>>()
  const keyOf = (id: string) => {
    let key = imported.get(id)
    if (!key) imported.set(id, (key = importAesKey(options.keys[id]!)))
    return key
  }
  const context = (sessionId: string, name: string) => `${sessionId}\u0000${name}`

  return withCodec(inner, {
    async encode(sessionId, name, value) {
      const box = await seal(await keyOf(options.currentKeyId), JSON.stringify(value), context(sessionId, name))
      return { '~enc': options.currentKeyId, ...box }
    },
    async decode(sessionId, name, stored) {
      // Values the store itself writes (a workflow's lastModified stamp) are not sealed.
      if (!isEnvelope(stored)) return stored
      const keyId = stored['~enc']
      if (!Object.hasOwn(options.keys, keyId)) {
        throw new Error(
          `Cannot decrypt variable "${name}" of session "${sessionId}": it was encrypted with key "${keyId}", which is not among the keys given to encryptedStore`,
        )
      }
      try {
        return JSON.parse(await open(await keyOf(keyId), stored, context(sessionId, name))) as JsonValue
      } catch {
        throw new Error(
          `Cannot decrypt variable "${name}" of session "${sessionId}" with key "${keyId}": wrong key, or the data was changed`,
        )
      }
    },
  })
}
