import { fileURLToPath } from 'node:url'
import react from '@vitejs/plugin-react'
import { defineConfig } from 'vite'

const src = (path: string) => fileURLToPath(new URL(`./src/${path}`, import.meta.url))

/** The package's public import paths, resolved to its sources (demo, stories, tests). */
export const packageAliases = [
  { find: /^workflow-session$/, replacement: src('react/index.ts') },
  { find: /^workflow-session\/client$/, replacement: src('client/index.ts') },
  { find: /^workflow-session\/server$/, replacement: src('server/index.ts') },
  { find: /^workflow-session\/msw$/, replacement: src('msw.ts') },
  { find: /^workflow-session\/devtools$/, replacement: src('devtools/index.ts') },
]

export default defineConfig({
  plugins: [react()],
  resolve: { alias: packageAliases },
})
