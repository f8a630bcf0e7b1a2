// Bundle size of each entry point: minified, then brotli and gzip. Two columns: our code alone
// (every dependency external), and what an app pays (the card's dependencies bundled, peers
// and msw external). Run: npm run size
import { build } from 'esbuild'
import { brotliCompressSync, constants, gzipSync } from 'node:zlib'

const entries = {
  'workflow-session': 'src/react/index.ts',
  'workflow-session/client': 'src/client/index.ts',
  'workflow-session/server': 'src/server/index.ts',
  'workflow-session/msw': 'src/msw.ts',
}
const peers = ['react', 'react-dom', 'react/jsx-runtime', 'msw', 'node:*']
const dependencies = ['@tanstack/react-query', 'use-debounce', 'idb-keyval']

async function sizeOf(entry: string, external: string[]) {
  const result = await build({ entryPoints: [entry], bundle: true, minify: true, format: 'esm', platform: 'neutral', write: false, external, logLevel: 'silent' })
  const code = result.outputFiles[0]!.contents
  const brotli = brotliCompressSync(code, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }).byteLength
  return { min: code.byteLength, brotli, gzip: gzipSync(code, { level: 9 }).byteLength }
}

const kb = (bytes: number) => `${(bytes / 1024).toFixed(2)} kB`
const rows: string[] = ['| entry | own code, brotli | own code, gzip | with dependencies, brotli | with dependencies, gzip |', '|---|---|---|---|---|']
for (const [name, entry] of Object.entries(entries)) {
  const own = await sizeOf(entry, [...peers, ...dependencies])
  const all = await sizeOf(entry, peers)
  rows.push(`| \`${name}\` | ${kb(own.brotli)} | ${kb(own.gzip)} | ${kb(all.brotli)} | ${kb(all.gzip)} |`)
}
console.log(rows.join('\n'))
