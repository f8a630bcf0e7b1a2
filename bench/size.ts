// Bundle size of each entry point: minified ESM, then brotli and gzip. "Own code" keeps every
// dependency external (what this package adds); "with dependencies" bundles the card's
// dependencies (TanStack Query, use-debounce, idb-keyval; lit-html for the devtools) and keeps the peers (react,
// react-dom, msw, node:*) external: what an app that has none of them yet pays.
//   npm run size
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'
import { build } from 'esbuild'

export const ENTRIES = {
  'workflow-session': 'src/react/index.ts',
  'workflow-session/client': 'src/client/index.ts',
  'workflow-session/server': 'src/server/index.ts',
  'workflow-session/msw': 'src/msw.ts',
  'workflow-session/devtools': 'src/devtools/index.ts',
} as const

/**
 * Apps, as an app bundles them (only what it imports is kept): the smallest useful one, and one
 * that uses every capability. Measured beside the entries and held to budgets the same way.
 */
export const APPS = {
  /** SessionProvider, useVariable, useSyncStatus and useRun. */
  'minimal app': `export { SessionProvider, useVariable, useSyncStatus, useRun } from './src/react/index.ts'`,
  /** The minimal app that declares schema migrations (what the migrating code adds: nothing without it). */
  'minimal app with migrations': `export { SessionProvider, useVariable, useSyncStatus, useRun, defineMigrations } from './src/react/index.ts'`,
  /** Every hook and capability. */
  'full app': `export * from './src/react/index.ts'`,
  /** The minimal app with the devtools panel (what importing it costs; an app that does not import it pays nothing). */
  'minimal app with devtools': `export { SessionProvider, useVariable, useSyncStatus, useRun } from './src/react/index.ts'; export { SessionDevtools } from './src/devtools/index.ts'`,
} as const

/**
 * Apps as a bundler that splits code ships them: the first chunk only (what an app loads at
 * once; code imported on demand, like the devtools panel, comes later, or never).
 */
export const SPLIT_APPS = {
  'minimal app with devtools, first chunk': APPS['minimal app with devtools'],
} as const

const PEERS = ['react', 'react-dom', 'react/jsx-runtime', 'msw', 'node:*', 'pg', 'better-sqlite3']
const DEPENDENCIES = ['@tanstack/react-query', 'use-debounce', 'idb-keyval', 'lit-html', 'lit-html/*']

export interface Size {
  min: number
  brotli: number
  gzip: number
}

/** Bundles `code` (an ES module's source) with `external` left out (the peers always), minified: the text an app ships. */
export async function bundledText(code: string, external: string[]): Promise<string> {
  return new TextDecoder().decode(await bundled(code, [...PEERS, ...external]))
}

/** Bundles `code` (an ES module's source) with `external` left out, and measures it (with `split`, its first chunk). */
export async function sizeOfModule(code: string, external: string[], split = false): Promise<Size> {
  // Split: each file of the first chunk is fetched and compressed on its own.
  const files = split ? await firstChunk(code, external) : [await bundled(code, external)]
  const sum = (size: (bytes: Uint8Array) => number) => files.reduce((total, bytes) => total + size(bytes), 0)
  return {
    min: sum((bytes) => bytes.byteLength),
    brotli: sum((bytes) => brotliCompressSync(bytes, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).byteLength),
    gzip: sum((bytes) => gzipSync(bytes, { level: 9 }).byteLength),
  }
}

async function bundled(code: string, external: string[]): Promise<Uint8Array> {
  const result = await build({
    stdin: { contents: code, resolveDir: process.cwd(), loader: 'ts' },
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'neutral',
    write: false,
    external,
    logLevel: 'silent',
  })
  return result.outputFiles[0]!.contents
}

/**
 * What an app loads first when its bundler splits code (esbuild's `splitting`): its entry chunk
 * and every chunk that one imports statically, file by file; chunks imported on demand are left out.
 */
export async function firstChunk(code: string, external: string[]): Promise<Uint8Array[]> {
  const place = mkdtempSync(join(tmpdir(), 'ws-size-'))
  try {
    const entry = join(place, 'app.ts')
    writeFileSync(entry, code.replaceAll("'./src/", `'${process.cwd()}/src/`))
    const out = join(place, 'out')
    const result = await build({
      entryPoints: [entry],
      bundle: true,
      minify: true,
      format: 'esm',
      platform: 'neutral',
      splitting: true,
      outdir: out,
      write: false,
      metafile: true,
      external,
      logLevel: 'silent',
    })
    const contents = new Map(result.outputFiles.map((file) => [file.path, file.contents]))
    const loaded = new Set<string>()
    const load = (path: string) => {
      if (loaded.has(path)) return
      loaded.add(path)
      const output = result.metafile.outputs[relative(process.cwd(), path)]
      if (!output) throw new Error(`esbuild's metafile does not name ${path}`)
      for (const imported of output.imports) if (imported.kind === 'import-statement' && !imported.external) load(resolve(imported.path))
    }
    load(join(out, 'app.js'))
    return [...loaded].map((path) => contents.get(path)!)
  } finally {
    rmSync(place, { recursive: true, force: true })
  }
}

export async function entrySizes(): Promise<Array<{ entry: string; own: Size; withDependencies: Size }>> {
  const rows = []
  for (const [entry, path] of Object.entries(ENTRIES)) {
    const code = `export * from './${path}'`
    rows.push({ entry, own: await sizeOfModule(code, [...PEERS, ...DEPENDENCIES]), withDependencies: await sizeOfModule(code, PEERS) })
  }
  for (const [entry, code] of Object.entries(APPS)) {
    rows.push({ entry, own: await sizeOfModule(code, [...PEERS, ...DEPENDENCIES]), withDependencies: await sizeOfModule(code, PEERS) })
  }
  for (const [entry, code] of Object.entries(SPLIT_APPS)) {
    rows.push({
      entry,
      own: await sizeOfModule(code, [...PEERS, ...DEPENDENCIES], true),
      withDependencies: await sizeOfModule(code, PEERS, true),
    })
  }
  return rows
}

/** Budgets in kB (brotli, own code) per entry: `npm test` fails when one is passed. */
export const BUDGETS = JSON.parse(readFileSync(new URL('./size-budgets.json', import.meta.url), 'utf8')) as Record<string, number>

/** The figures before the client rework (bench/before.json), shown beside each run. */
export const BEFORE = JSON.parse(readFileSync(new URL('./before.json', import.meta.url), 'utf8')) as {
  keystrokeLatencyMs: Record<string, { p50: number; p99: number }>
  hydrationMs: Record<string, number>
  sizeBrotliKB: Record<string, number>
}
const before = (entry: string) => (BEFORE.sizeBrotliKB[entry] === undefined ? '—' : `${BEFORE.sizeBrotliKB[entry].toFixed(2)} kB`)

export const kB = (bytes: number) => `${(bytes / 1024).toFixed(2)} kB`

if (import.meta.url === `file://${process.argv[1]}`) {
  const lines = [
    '| entry | own code, brotli (budget) | before the client rework | own code, gzip | with dependencies, brotli | with dependencies, gzip |',
    '|---|---|---|---|---|---|',
  ]
  for (const row of await entrySizes()) {
    lines.push(
      `| \`${row.entry}\` | ${kB(row.own.brotli)} (${BUDGETS[row.entry]} kB) | ${before(row.entry)} | ${kB(row.own.gzip)} | ${kB(row.withDependencies.brotli)} | ${kB(row.withDependencies.gzip)} |`,
    )
  }
  console.log(lines.join('\n'))
}
