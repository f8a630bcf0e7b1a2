import { existsSync } from 'node:fs'
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { installPacked, packedTarball, ROOT, run } from './packed.js'

// The published .d.ts files, checked the way a user's project sees them: the packed tarball
// installed by npm into a project of its own, `skipLibCheck: false`, every export of an entry
// imported. No optional peer (pg, better-sqlite3, msw) is installed there.
//
// The server entry compiles with the ES lib and Node's types only, no DOM. The client entry is
// checked with the DOM lib: it is the browser half (its transport and tab coordination take DOM
// types such as HeadersInit and LockManager), and without React's types. The React entry adds
// @types/react. Each entry is imported through its own path under node16, node10 and bundler.

const RESOLUTIONS = [
  { moduleResolution: 'node16', module: 'node16' },
  { moduleResolution: 'node10', module: 'commonjs' },
  { moduleResolution: 'bundler', module: 'esnext' },
] as const

const TSC = join(ROOT, 'node_modules/typescript/bin/tsc')

let project = ''

beforeAll(async () => {
  const tarball = await packedTarball()
  project = await mkdtemp(join(tmpdir(), 'ws-types-'))
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'types-check', private: true, type: 'module' }))
  await installPacked(project, tarball)
  await mkdir(join(project, 'node_modules/@types'), { recursive: true })
  await symlink(join(ROOT, 'node_modules/@types/node'), join(project, 'node_modules/@types/node'), 'dir')
  await writeFile(join(project, 'server.ts'), `export * from 'workflow-session/server'\n`)
  await writeFile(join(project, 'client.ts'), `export * from 'workflow-session/client'\n`)
  await writeFile(join(project, 'react.ts'), `export * from 'workflow-session'\n`)
  // The package's own option types take what people pass: pool settings, a key from Node's WebCrypto.
  await writeFile(
    join(project, 'server-usage.ts'),
    `import { webcrypto } from 'node:crypto'
import { encryptedStore, memoryStore, postgresStore, type PostgresStoreOptions } from 'workflow-session/server'

export const options: PostgresStoreOptions = {
  pool: { max: 5, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 2000, ssl: { rejectUnauthorized: false }, statement_timeout: 10_000, application_name: 'app' },
}
// @ts-expect-error the URL is postgresStore's first argument, not a pool setting
export const twoUrls: PostgresStoreOptions = { pool: { connectionString: 'postgres://elsewhere' } }

export async function open(url: string) {
  const key = await webcrypto.subtle.generateKey({ name: 'AES-GCM', length: 256 }, false, ['encrypt', 'decrypt'])
  return [await postgresStore(url, options), encryptedStore(memoryStore(), { keys: { current: key, old: new Uint8Array(32) }, currentKeyId: 'current' })]
}
`,
  )
}, 240_000)

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true })
})

async function typeCheck(name: string, compilerOptions: Record<string, unknown>, files: string[]): Promise<void> {
  // skipDefaultLibCheck skips only TypeScript's own lib.*.d.ts, which are not ours to check.
  const config = { compilerOptions: { target: 'ES2022', strict: true, skipLibCheck: false, skipDefaultLibCheck: true, noEmit: true, ...compilerOptions }, files }
  await writeFile(join(project, `tsconfig.${name}.json`), JSON.stringify(config, null, 2))
  // Fails with tsc's diagnostics in the message.
  await run(process.execPath, [TSC, '-p', `tsconfig.${name}.json`], { cwd: project })
}

it.each(RESOLUTIONS)('server types compile without the DOM lib and without pg, better-sqlite3 or msw (moduleResolution $moduleResolution)', async (resolution) => {
  for (const peer of ['pg', 'better-sqlite3', 'msw', '@types/pg', '@types/better-sqlite3']) expect(existsSync(join(project, 'node_modules', peer)), peer).toBe(false)
  await typeCheck(`server-${resolution.moduleResolution}`, { lib: ['ES2022'], types: ['node'], ...resolution }, ['server.ts', 'server-usage.ts'])
}, 60_000)

// React types are for the React entry only: the framework-free client compiles without them.
it('client types compile with the DOM lib and no React types', async () => {
  expect(existsSync(join(project, 'node_modules/@types/react'))).toBe(false)
  await typeCheck('client', { lib: ['ES2022', 'DOM'], types: ['node'], ...RESOLUTIONS[0] }, ['client.ts'])
}, 60_000)

it.each(RESOLUTIONS)('client and React entry types compile with the DOM lib and @types/react (moduleResolution $moduleResolution)', async (resolution) => {
  if (!existsSync(join(project, 'node_modules/@types/react'))) {
    await symlink(join(ROOT, 'node_modules/@types/react'), join(project, 'node_modules/@types/react'), 'dir')
  }
  await typeCheck(`react-${resolution.moduleResolution}`, { lib: ['ES2022', 'DOM'], types: ['node'], jsx: 'react-jsx', ...resolution }, ['client.ts', 'react.ts'])
}, 60_000)
