import { existsSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Plugin } from 'vite'

const folder = fileURLToPath(new URL('.', import.meta.url))
const modules = `${folder}node_modules/`
// Bare imports resolved as if written in this folder: its node_modules holds the oldest peers.
const anchor = `${folder}package.json`

/**
 * Every entry point of the peers whose oldest admitted version this folder holds, with subpaths:
 * React and ReactDOM (18.3), Testing Library's React bindings (installed here so that they find
 * React 18), TanStack Query (5.59) and msw (2).
 */
const oldestPeerImport = /^(?:react|react-dom|@testing-library\/react|@tanstack\/react-query|msw)(?:\/.*)?$/

/**
 * Resolves every import of those peers (`react-dom/client`, `react/jsx-runtime`, `msw/node`…) to
 * the copies in test/oldest-peers/node_modules, with the same export conditions as any bare
 * import. Applies to the test files, src/ and every dependency Vite transforms, so the
 * dependencies that import React must be inlined ({@link inlineReactDeps}): one that Node loads
 * itself would get the React 19 of the root node_modules, and two Reacts break hooks.
 */
export function resolveOldestPeers(): Plugin {
  return {
    name: 'workflow-session:oldest-peers',
    enforce: 'pre',
    async resolveId(source, _importer, options) {
      if (!oldestPeerImport.test(source)) return null
      if (!existsSync(modules))
        throw new Error(`The oldest peers are not installed: run \`npm ci\` in ${folder} (scripts/test-env.sh does it before npm test)`)
      const resolved = await this.resolve(source, anchor, { ...options, skipSelf: true })
      if (resolved && !resolved.id.startsWith(modules) && !resolved.id.startsWith(`${realpathSync(modules)}/`)) {
        throw new Error(`${source} resolved to ${resolved.id}, not to the copy in ${modules}: run \`npm ci\` in ${folder}`)
      }
      return resolved
    },
  }
}

/** The dependencies that import React; Vite transforms them so their imports get React 18. */
export const inlineReactDeps = [/\/node_modules\/@tanstack\/react-query\//, /\/node_modules\/use-debounce\//]
