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
// @types/react. Each entry is imported through its own path under node16, node10 and bundler,
// by each TypeScript a user may have: 5.9, 6 and 7 (the native compiler). TypeScript 6 takes
// node10 only with `ignoreDeprecations: "6.0"`, and 7 does not have it any more.

// TypeScript 6 and 7 come from test/package/compilers (its own lockfile, installed by scripts/test-env.sh).
const COMPILERS: Compiler[] = [
  { typescript: '5.9', tsc: join(ROOT, 'node_modules/typescript/bin/tsc'), node10: {} },
  { typescript: '6', tsc: join(ROOT, 'test/package/compilers/node_modules/typescript-6/bin/tsc'), node10: { ignoreDeprecations: '6.0' } },
  { typescript: '7', tsc: join(ROOT, 'test/package/compilers/node_modules/typescript-7/bin/tsc'), node10: null },
]

const RESOLUTIONS = [
  { moduleResolution: 'node16', module: 'node16' },
  { moduleResolution: 'node10', module: 'commonjs' },
  { moduleResolution: 'bundler', module: 'esnext' },
] as const

interface Compiler {
  typescript: string
  tsc: string
  /** The options node10 needs with this compiler, or null where it has no node10. */
  node10: Record<string, unknown> | null
}

interface Check extends Compiler {
  resolution: (typeof RESOLUTIONS)[number]
  options: Record<string, unknown>
}

/** Every compiler with every resolution it has. */
const CASES: Check[] = COMPILERS.flatMap((compiler) =>
  RESOLUTIONS.flatMap((resolution): Check[] => {
    if (resolution.moduleResolution !== 'node10') return [{ ...compiler, resolution, options: { ...resolution } }]
    return compiler.node10 === null ? [] : [{ ...compiler, resolution, options: { ...resolution, ...compiler.node10 } }]
  }),
)

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
  await writeFile(join(project, 'devtools.ts'), `export * from 'workflow-session/devtools'\n`)
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

async function typeCheck(compiler: Compiler, name: string, compilerOptions: Record<string, unknown>, files: string[]): Promise<void> {
  name = `${name}-ts${compiler.typescript}`
  // skipDefaultLibCheck skips only TypeScript's own lib.*.d.ts, which are not ours to check.
  const config = {
    compilerOptions: { target: 'ES2022', strict: true, skipLibCheck: false, skipDefaultLibCheck: true, noEmit: true, ...compilerOptions },
    files,
  }
  await writeFile(join(project, `tsconfig.${name}.json`), JSON.stringify(config, null, 2))
  // Fails with tsc's diagnostics in the message.
  await run(process.execPath, [compiler.tsc, '-p', `tsconfig.${name}.json`], { cwd: project })
}

it('the compilers are the versions they are named after', async () => {
  for (const compiler of COMPILERS)
    expect(await run(process.execPath, [compiler.tsc, '--version'], { cwd: ROOT })).toMatch(
      new RegExp(`^Version ${compiler.typescript.replace('.', '\\.')}\\.`),
    )
})

it.each(CASES)(
  'server types compile without the DOM lib and without pg, better-sqlite3 or msw (TypeScript $typescript, moduleResolution $resolution.moduleResolution)',
  async (check) => {
    for (const peer of ['pg', 'better-sqlite3', 'msw', '@types/pg', '@types/better-sqlite3'])
      expect(existsSync(join(project, 'node_modules', peer)), peer).toBe(false)
    await typeCheck(check, `server-${check.resolution.moduleResolution}`, { lib: ['ES2022'], types: ['node'], ...check.options }, [
      'server.ts',
      'server-usage.ts',
    ])
  },
  60_000,
)

// React types are for the React entry only: the framework-free client compiles without them.
it.each(COMPILERS)(
  'client types compile with the DOM lib and no React types (TypeScript $typescript)',
  async (compiler) => {
    expect(existsSync(join(project, 'node_modules/@types/react'))).toBe(false)
    await typeCheck(compiler, 'client', { lib: ['ES2022', 'DOM'], types: ['node'], ...RESOLUTIONS[0] }, ['client.ts'])
  },
  60_000,
)

it.each(CASES)(
  'client, React and devtools entry types compile with the DOM lib and @types/react (TypeScript $typescript, moduleResolution $resolution.moduleResolution)',
  async (check) => {
    if (!existsSync(join(project, 'node_modules/@types/react'))) {
      await symlink(join(ROOT, 'node_modules/@types/react'), join(project, 'node_modules/@types/react'), 'dir')
    }
    await typeCheck(
      check,
      `react-${check.resolution.moduleResolution}`,
      { lib: ['ES2022', 'DOM'], types: ['node'], jsx: 'react-jsx', ...check.options },
      ['client.ts', 'react.ts', 'devtools.ts'],
    )
  },
  60_000,
)
