import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

export interface DemoAssets {
  js: string
  css: string
}

/** Bundles the demo page (React, the package's hooks, the stylesheet) in memory, at schema version `schemaVersion` (demo/schema.ts). */
export async function buildDemoAssets(schemaVersion = 1): Promise<DemoAssets> {
  const result = await build({
    entryPoints: { app: fileURLToPath(new URL('./src/main.tsx', import.meta.url)) },
    bundle: true,
    minify: true,
    format: 'esm',
    target: 'es2022',
    outdir: 'out',
    write: false,
    jsx: 'automatic',
    define: { 'process.env.NODE_ENV': '"production"', DEMO_SCHEMA_VERSION: String(schemaVersion) },
    logLevel: 'silent',
  })
  const file = (ending: string) => result.outputFiles.find((output) => output.path.endsWith(ending))?.text ?? ''
  return { js: file('.js'), css: file('.css') }
}

export const INDEX_HTML = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>workflow-session demo</title>
    <link rel="stylesheet" href="/app.css" />
  </head>
  <body>
    <div id="root"></div>
    <script type="module" src="/app.js"></script>
  </body>
</html>
`
