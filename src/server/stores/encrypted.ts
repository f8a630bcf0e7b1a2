import type { JsonValue, SessionSnapshot, Variables } from '../../shared/protocol.js'
import { importAesKey, open, seal, type KeyMaterial } from '../../shared/crypto.js'
import { assertValidChange } from '../merge.js'
import { defineStore, type SessionStore } from './types.js'

export interface EncryptionOptions {
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
  typeof value === 'object' && value !== null && !Array.isArray(value) && typeof value['~enc'] === 'string' && typeof value.iv === 'string' && typeof value.data === 'string'

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
export function encryptedStore(inner: SessionStore, options: EncryptionOptions): SessionStore {
  if (!Object.hasOwn(options.keys, options.currentKeyId)) throw new Error(`encryptedStore: no key with id "${options.currentKeyId}" among the keys given`)
  const imported = new Map<string, Promise<CryptoKey>>()
  const keyOf = (id: string) => {
    if (!Object.hasOwn(options.keys, id)) {
      throw new Error(`A value was encrypted with key "${id}", which is not among the keys given to encryptedStore`)
    }
    let key = imported.get(id)
    if (!key) imported.set(id, (key = importAesKey(options.keys[id]!)))
    return key
  }
  const context = (sessionId: string, name: string) => `${sessionId}\u0000${name}`

  async function sealAll(sessionId: string, variables: Variables | undefined): Promise<Variables | undefined> {
    if (!variables) return undefined
    const key = await keyOf(options.currentKeyId)
    const sealed: Variables = {}
    for (const [name, value] of Object.entries(variables)) {
      const box = await seal(key, JSON.stringify(value), context(sessionId, name))
      sealed[name] = { '~enc': options.currentKeyId, ...box }
    }
    return sealed
  }

  async function openSnapshot(snapshot: SessionSnapshot): Promise<SessionSnapshot> {
    const variables: Variables = {}
    for (const [name, value] of Object.entries(snapshot.variables)) {
      // Values the store itself writes (a workflow's lastModified stamp) are not sealed.
      if (!isEnvelope(value)) {
        variables[name] = value
        continue
      }
      try {
        variables[name] = JSON.parse(await open(await keyOf(value['~enc']), value, context(snapshot.sessionId, name))) as JsonValue
      } catch (error) {
        if (error instanceof Error && error.message.startsWith('A value was encrypted with key')) throw error
        throw new Error(`Cannot decrypt variable "${name}" of session "${snapshot.sessionId}" with key "${value['~enc']}": wrong key, or the data was changed`)
      }
    }
    return { ...snapshot, variables }
  }

  const store = defineStore({
    async get(sessionId) {
      const snapshot = await inner.get(sessionId)
      return snapshot && openSnapshot(snapshot)
    },
    async apply(sessionId, change, limits) {
      // The inner merge sees sealed values only: the rules apply to the caller's values here.
      assertValidChange(change)
      const variables = await sealAll(sessionId, change.variables)
      const result = await inner.apply(sessionId, { ...change, ...(variables && { variables }) }, limits)
      return { ...result, snapshot: await openSnapshot(result.snapshot) }
    },
    delete: (sessionId) => inner.delete(sessionId),
    list: (listOptions) => inner.list(listOptions),
    purgeExpired: () => inner.purgeExpired(),
    close: () => inner.close(),
  })
  return inner.watch ? { ...store, watch: (onChange) => inner.watch!(onChange) } : store
}
