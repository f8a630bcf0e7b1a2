// The demo's users: each browser gets a user id in a signed, HttpOnly cookie (a JWT signed with
// HS256 by jose, a well-kept library; no hand-made crypto). Sessions belong to that user.
import { randomUUID } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { jwtVerify, SignJWT } from 'jose'

const COOKIE = 'ws_user'
const YEAR_SECONDS = 365 * 24 * 3600

/** The signing secret: SESSION_SECRET, else one kept in a file so that restarts keep users signed in. */
export async function loadSecret(file = process.env.SESSION_SECRET_FILE ?? '.data/cookie-secret'): Promise<Uint8Array> {
  if (process.env.SESSION_SECRET) return new TextEncoder().encode(process.env.SESSION_SECRET)
  try {
    return new Uint8Array(await readFile(file))
  } catch {
    const secret = crypto.getRandomValues(new Uint8Array(32))
    await mkdir(dirname(file), { recursive: true })
    await writeFile(file, secret, { mode: 0o600 })
    return secret
  }
}

export function cookieAuth(secret: Uint8Array) {
  /** The user id in the request's cookie, if its signature holds. */
  async function userOf(request: Request): Promise<string | null> {
    const token = (request.headers.get('cookie') ?? '')
      .split(';')
      .map((part) => part.trim().split('='))
      .find(([name]) => name === COOKIE)?.[1]
    if (!token) return null
    try {
      const { payload } = await jwtVerify(token, secret, { algorithms: ['HS256'] })
      return typeof payload.sub === 'string' ? payload.sub : null
    } catch {
      return null
    }
  }

  /** A Set-Cookie header for a new user, or null when the request already has a valid one. */
  async function signIn(request: Request): Promise<string | null> {
    if (await userOf(request)) return null
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'HS256' }).setSubject(`user-${randomUUID()}`).setIssuedAt().sign(secret)
    const secure = new URL(request.url).protocol === 'https:' ? '; Secure' : ''
    return `${COOKIE}=${token}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${YEAR_SECONDS}${secure}`
  }

  return { userOf, signIn }
}
