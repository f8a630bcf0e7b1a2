import { fileURLToPath } from 'node:url'
import { storybookTest } from '@storybook/addon-vitest/vitest-plugin'
import { playwright } from '@vitest/browser-playwright'
import { defineConfig, mergeConfig } from 'vitest/config'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/chromium.js'
import { inlineReactDeps, resolveOldestPeers } from './test/oldest-peers/resolve.js'
import viteConfig from './vite.config.js'

const chromium = playwright({ launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS } })

export default mergeConfig(
  viteConfig,
  defineConfig({
    test: {
      reporters: ['default', './test/summary-reporter.ts'],
      // On Node 22, node:sqlite (the SQLite store's built-in binding) prints an ExperimentalWarning
      // once per process; the docs tell apps to pass this same flag (24 and 26 print nothing).
      execArgv: ['--disable-warning=ExperimentalWarning'],
      projects: [
        {
          extends: true,
          test: {
            name: 'unit',
            include: ['test/**/*.test.{ts,tsx}'],
            exclude: ['test/e2e/**', 'test/oldest-peers/**'],
            environment: 'node',
            setupFiles: ['test/setup.ts'],
          },
        },
        {
          // The React tests and the client's sync tests once more on the oldest version of each
          // peer range (React 18.3, @tanstack/react-query 5.59, msw 2), installed in
          // test/oldest-peers by scripts/test-env.sh; test/oldest-peers/oldest-peers.test.tsx
          // proves those are the copies used.
          extends: true,
          plugins: [resolveOldestPeers()],
          test: {
            name: 'oldest-peers',
            include: ['test/react/**/*.test.tsx', 'test/client/sync.test.ts', 'test/oldest-peers/**/*.test.tsx'],
            exclude: ['**/node_modules/**'],
            environment: 'node',
            setupFiles: ['test/setup.ts', 'test/oldest-peers/setup.ts'],
            server: { deps: { inline: inlineReactDeps } },
          },
        },
        {
          extends: true,
          test: {
            name: 'e2e',
            include: ['test/e2e/**/*.e2e.test.ts'],
            environment: 'node',
            setupFiles: ['test/setup.ts'],
            testTimeout: 60_000,
            hookTimeout: 60_000,
          },
        },
        {
          extends: true,
          plugins: [storybookTest({ configDir: fileURLToPath(new URL('./.storybook', import.meta.url)) })],
          test: {
            name: 'storybook',
            browser: { enabled: true, headless: true, provider: chromium, instances: [{ browser: 'chromium', name: 'stories-chromium' }] },
          },
        },
      ],
    },
  }),
)
