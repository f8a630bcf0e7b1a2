import { join } from 'node:path'
import { expect, it } from 'vitest'
import { ROOT, run } from './packed.js'

// The source tree, checked by the linters of the code itself: ESLint with type information
// (eslint.config.js: typescript-eslint's strictTypeChecked, React's hooks rules, import order),
// Prettier's formatting (.prettierrc.json, .prettierignore) and knip's unused files, exports and
// dependencies (knip.jsonc). `npm run lint` runs the same three; `npm run format` fixes the
// formatting. Each fails with the tool's own report of what and where.

const bin = (name: string) => join(ROOT, 'node_modules/.bin', name)
// On two cores, beside the rest of the suite, ESLint's type-checked pass over the whole tree
// takes up to a minute or two.
const LIMIT_MS = 300_000

it(
  'ESLint finds no problem, not even a warning',
  async () => {
    const output = await run(bin('eslint'), ['.', '--max-warnings', '0', '--no-color'], { cwd: ROOT, timeoutMs: LIMIT_MS })
    expect(output.trim()).toBe('')
  },
  LIMIT_MS,
)

it(
  'every file is formatted as Prettier formats it',
  async () => {
    const output = await run(bin('prettier'), ['--check', '.', '--no-color'], { cwd: ROOT, timeoutMs: LIMIT_MS })
    expect(output).toContain('All matched files use Prettier code style!')
  },
  LIMIT_MS,
)

it(
  'knip finds no unused file, export or dependency, and has no hint about its config',
  async () => {
    const output = await run(bin('knip'), ['--no-progress', '--treat-config-hints-as-errors'], { cwd: ROOT, timeoutMs: LIMIT_MS })
    expect(output.trim()).toBe('')
  },
  LIMIT_MS,
)
