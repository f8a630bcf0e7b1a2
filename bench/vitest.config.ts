import { defineConfig, mergeConfig } from 'vitest/config'
import viteConfig from '../vite.config.js'

// The benchmarks that need a DOM or fake timers run under vitest; `npm run bench` drives them.
export default mergeConfig(viteConfig, defineConfig({ test: { include: ['bench/**/*.bench.tsx'], testTimeout: 600_000 } }))
