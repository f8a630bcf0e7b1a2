// AES-256-GCM through WebCrypto (browsers, Node, Deno, Bun, workers): no hand-made crypto here,
// only the encoding around it.

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/**
 * A WebCrypto key: the runtime's `CryptoKey` where the program's types declare one (the DOM lib),
 * else its shape (a key from Node's `crypto.subtle` fits). So the server's types need no DOM lib.
 */
export type WebCryptoKey = typeof globalThis extends { CryptoKey: { prototype: infer Key } }
  ? Key
  : {
      readonly algorithm: { readonly name: string }
      readonly extractable: boolean
      readonly type: string
      readonly usages: readonly string[]
    }

/** A key for `seal`/`open`: a CryptoKey, or 32 raw bytes (as bytes or base64). */
export type KeyMaterial = WebCryptoKey | Uint8Array | string

/** Imports key material as an AES-GCM CryptoKey (32 bytes: AES-256). */
export async function importAesKey(material: KeyMaterial): Promise<WebCryptoKey> {
  if (typeof material === 'object' && 'algorithm' in material) return material
  const bytes = typeof material === 'string' ? fromBase64(material) : material
  if (bytes.byteLength !== 32) throw new TypeError(`An AES-256 key is 32 bytes; this one is ${bytes.byteLength}`)
  return crypto.subtle.importKey('raw', bytes as Uint8Array<ArrayBuffer>, 'AES-GCM', false, ['encrypt', 'decrypt'])
}

/** A new random AES-256 key as base64 (for configuration: `SESSION_ENCRYPTION_KEY`). */
export function newKeyBase64(): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(32)))
}

/** Encrypts `text`, bound to `context` (it must be the same to open it). Returns base64 `iv` and `data`. */
export async function seal(key: WebCryptoKey, text: string, context: string): Promise<{ iv: string; data: string }> {
  const iv = crypto.getRandomValues(new Uint8Array(12))
  const data = await crypto.subtle.encrypt({ name: 'AES-GCM', iv, additionalData: encoder.encode(context) }, key, encoder.encode(text))
  return { iv: toBase64(iv), data: toBase64(new Uint8Array(data)) }
}

/** Decrypts what `seal` returned; rejects when the key or the context is not the one it was sealed with. */
export async function open(key: WebCryptoKey, sealed: { iv: string; data: string }, context: string): Promise<string> {
  const plain = await crypto.subtle.decrypt(
    { name: 'AES-GCM', iv: fromBase64(sealed.iv) as Uint8Array<ArrayBuffer>, additionalData: encoder.encode(context) },
    key,
    fromBase64(sealed.data) as Uint8Array<ArrayBuffer>,
  )
  return decoder.decode(plain)
}

function toBase64(bytes: Uint8Array): string {
  let binary = ''
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000))
  return btoa(binary)
}

function fromBase64(text: string): Uint8Array {
  const binary = atob(text)
  const bytes = new Uint8Array(binary.length)
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i)
  return bytes
}
