import { storybookTest } from '@storybook/addon-vitest/vitest-plugin'
import { playwright } from '@vitest/browser-playwright'
import { fileURLToPath } from 'node:url'
import { defineConfig, mergeConfig } from 'vitest/config'
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './test/chromium.js'
import { inlineReactDeps, resolveReact18 } from './test/react18/resolve.js'
import viteConfig from './vite.config.js'

const chromium = playwright({ launchOptions: { executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS } })

export default mergeConfig(
  viteConfig,
  defineConfig({
    test: {
      reporters: ['default', './test/summary-reporter.ts'],
      projects: [
        {
          extends: true,
          test: { name: 'unit', include: ['test/**/*.test.{ts,tsx}'], exclude: ['test/e2e/**', 'test/react18/**'], environment: 'node', setupFiles: ['test/setup.ts'] },
        },
        {
          // The React tests once more on React 18.3 (the peer range's other major), installed in
          // test/react18 by scripts/test-env.sh; test/react18/react18.test.tsx proves it is the one used.
          extends: true,
          plugins: [resolveReact18()],
          test: {
            name: 'react18',
            include: ['test/react/**/*.test.tsx', 'test/react18/**/*.test.tsx'],
            exclude: ['**/node_modules/**'],
            environment: 'node',
            setupFiles: ['test/setup.ts', 'test/react18/setup.ts'],
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
