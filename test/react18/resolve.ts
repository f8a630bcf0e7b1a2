import { existsSync, realpathSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Plugin } from 'vite'

const folder = fileURLToPath(new URL('.', import.meta.url))
const modules = `${folder}node_modules/`
// Bare imports resolved as if written in this folder: its node_modules holds React 18.
const anchor = `${folder}package.json`

/** Every entry point of React, ReactDOM and Testing Library's React bindings, with subpaths. */
const reactImport = /^(?:react|react-dom|@testing-library\/react)(?:\/.*)?$/

/**
 * Resolves every import of React, ReactDOM (`/client`, `/server`, `/test-utils`) and
 * `react/jsx-runtime` to the copies in test/react18/node_modules, with the same export
 * conditions as any bare import. Applies to the test files, src/react and every dependency
 * Vite transforms, so the dependencies that import React must be inlined ({@link inlineReactDeps}):
 * one that Node loads itself would get the React 19 of the root node_modules, and two Reacts
 * break hooks. Testing Library, resolved here, is loaded from this folder and finds React 18
 * on its own.
 */
export function resolveReact18(): Plugin {
  return {
    name: 'workflow-session:react18',
    enforce: 'pre',
    async resolveId(source, _importer, options) {
      if (!reactImport.test(source)) return null
      if (!existsSync(modules)) throw new Error(`React 18 is not installed: run \`npm ci\` in ${folder} (scripts/test-env.sh does it before npm test)`)
      const resolved = await this.resolve(source, anchor, { ...options, skipSelf: true })
      if (resolved && !resolved.id.startsWith(modules) && !resolved.id.startsWith(`${realpathSync(modules)}/`)) {
        throw new Error(`${source} resolved to ${resolved.id}, not to React 18 in ${modules}: run \`npm ci\` in ${folder}`)
      }
      return resolved
    },
  }
}

/** The dependencies that import React; Vite transforms them so their imports get React 18. */
export const inlineReactDeps = [/\/node_modules\/@tanstack\/react-query\//, /\/node_modules\/use-debounce\//]
