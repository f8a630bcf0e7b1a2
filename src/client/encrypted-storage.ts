import { importAesKey, type KeyMaterial, open, seal } from '../shared/crypto.js'
import type { LocalCopyStorage } from './cache.js'
import type { SessionPlugin } from './plugins.js'

/**
 * Encrypts what the client keeps on the device (AES-256-GCM, WebCrypto), each record bound to
 * its name. A record that does not decrypt with `key` (another key, tampered) reads as absent,
 * so the client discards it and starts from the server, as with any unreadable cache.
 *
 * What the {@link encryptedLocalCopy} plugin wraps around whichever storage the client uses.
 */
export function encryptedStorage(storage: LocalCopyStorage, key: KeyMaterial): LocalCopyStorage {
  const cryptoKey = importAesKey(key)
  const unseal = async (name: string, value: unknown) => {
    const sealed = value as { iv?: unknown; data?: unknown } | undefined
    if (typeof sealed?.iv !== 'string' || typeof sealed.data !== 'string') return undefined
    try {
      return JSON.parse(await open(await cryptoKey, { iv: sealed.iv, data: sealed.data }, name)) as unknown
    } catch {
      return undefined
    }
  }
  return {
    get: async (name) => unseal(name, await storage.get(name)),
    set: async (name, value) => storage.set(name, await seal(await cryptoKey, JSON.stringify(value), name)),
    del: (name) => storage.del(name),
    keys: () => storage.keys(),
  }
}

/**
 * Encrypts the copy the client keeps on this device (AES-256-GCM): a CryptoKey or 32 bytes (or
 * their base64), best fetched from your server after sign-in. Each record is bound to its name;
 * one that does not decrypt (another key, tampered) reads as absent, and the client starts from
 * the server.
 *
 * @example
 * <SessionProvider plugins={[encryptedLocalCopy(keyFromYourServer)]}>
 */
export function encryptedLocalCopy(key: KeyMaterial): SessionPlugin {
  return { name: 'encryptedLocalCopy', wrapStorage: (storage) => encryptedStorage(storage, key) }
}
