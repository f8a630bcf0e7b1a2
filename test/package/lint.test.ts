import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { publint } from 'publint'
import { formatMessage } from 'publint/utils'
import { expect, it } from 'vitest'
import { packedTarball, ROOT, run } from './packed.js'

// The packed tarball, as npm would publish it, checked by the two linters of published packages.

// Are the Types Wrong: every entry point must resolve to its types under node10 (the default of
// `next build`'s generated tsconfig; typesVersions), node16 from ESM and from CJS, and bundler.
//
// One rule is off: cjs-resolves-to-esm. The package is ESM only, on purpose. A CommonJS build
// beside it would give each entry two module instances (the React contexts among them: a
// provider from one copy is invisible to hooks from the other), and the engines field asks for
// Node ≥ 20.19, whose require() loads ES modules (require(esm)), as does TypeScript's
// `module: nodenext` (5.8+). So a CJS importer resolving to ESM is the design, not a problem.
// Every other rule stays on in every mode, node16-from-CJS included (`--profile esm-only` would
// drop that mode entirely).
it('attw finds no problem in the packed package', async () => {
  const tarball = await packedTarball()
  const attw = join(ROOT, 'node_modules/.bin/attw')
  // Exits 1 on any problem; run() then fails with attw's table of what failed where.
  const output = await run(
    attw,
    [tarball, '--ignore-rules', 'cjs-resolves-to-esm', '--no-definitely-typed', '--format', 'table', '--no-color', '--no-emoji'],
    {
      cwd: ROOT,
    },
  )
  expect(output).toContain('workflow-session/server')
}, 240_000)

it('publint has nothing to say about the packed package, not even a suggestion', async () => {
  const bytes = await readFile(await packedTarball())
  const tarball = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)
  const { messages, pkg } = await publint({ pack: { tarball }, level: 'suggestion', strict: true })
  expect(messages.map((message) => `${message.type}: ${formatMessage(message, pkg, { color: false })}`)).toEqual([])
}, 240_000)

// Without the directive, a server component that renders SessionProvider (a Next.js root layout)
// runs the provider's module on the server, where React has no createContext: the build fails.
it("every module of the React entry starts with 'use client' in the packed dist", async () => {
  const place = await mkdtemp(join(tmpdir(), 'ws-unpacked-'))
  try {
    await run('tar', ['-xzf', await packedTarball(), '-C', place], { cwd: place })
    const folder = join(place, 'package/dist/react')
    const modules = (await readdir(folder)).filter((name) => name.endsWith('.js'))
    expect(modules).toContain('index.js')
    const without: string[] = []
    for (const name of modules) if (!(await readFile(join(folder, name), 'utf8')).startsWith("'use client';")) without.push(name)
    expect(without).toEqual([])
  } finally {
    await rm(place, { recursive: true, force: true })
  }
}, 240_000)
