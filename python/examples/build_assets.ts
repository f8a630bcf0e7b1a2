// Builds the demo page (the TypeScript demo's, demo/src) into a folder for python/examples/demo_app.py:
//   npx tsx python/examples/build_assets.ts python/examples/.assets
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { INDEX_HTML, buildDemoAssets } from '../../demo/assets.js'

const out = process.argv[2] ?? 'python/examples/.assets'
const assets = await buildDemoAssets()
await mkdir(out, { recursive: true })
await Promise.all([writeFile(join(out, 'app.js'), assets.js), writeFile(join(out, 'app.css'), assets.css), writeFile(join(out, 'index.html'), INDEX_HTML)])
console.log(`demo page built in ${out}`)
