// ESLint for every TypeScript file of the package, its tests, stories, demo and benchmarks, with
// type information from tsconfig.json. `npm run lint` runs it; test/package/lint-source.test.ts
// runs it in `npm test` and fails on any problem, warnings included.
//
// Each rule below that is turned off or down says why beside it.
import js from '@eslint/js'
import prettier from 'eslint-config-prettier/flat'
import reactHooks from 'eslint-plugin-react-hooks'
import simpleImportSort from 'eslint-plugin-simple-import-sort'
import { defineConfig, globalIgnores } from 'eslint/config'
import globals from 'globals'
import tseslint from 'typescript-eslint'

export default defineConfig(
  globalIgnores([
    // Built and generated: the compiled package, Storybook's build, what tests and benchmarks write.
    'dist/',
    'storybook-static/',
    'coverage/',
    'test-results/',
    'bench/.results/',
    'test/docs/.blocks/',
    'test/docs/.links/',
    '.data/',
    // The Python package (its own linters) and the caches its tools leave at the root.
    'python/',
    '.hypothesis/',
    '.mypy_cache/',
    '.schemathesis/',
    // node_modules of the subfolders with lockfiles of their own are skipped by ESLint's default.
  ]),

  {
    files: ['**/*.{ts,tsx}'],
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked, reactHooks.configs.flat.recommended],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
      globals: { ...globals.browser, ...globals.node },
    },
    plugins: { 'simple-import-sort': simpleImportSort },
    linterOptions: { reportUnusedDisableDirectives: 'error', reportUnusedInlineConfigs: 'error' },
    rules: {
      // One block of imports, as the code has always written them: packages (node: builtins among
      // them, by name), then the project's own files, parents before siblings; no blank lines.
      'simple-import-sort/imports': ['error', { groups: [['^\\u0000', '^node:', '^@?\\w', '^', '^\\.']] }],
      'simple-import-sort/exports': 'error',

      // Down: numbers and booleans read well in a message (`${count} sessions`); objects, null,
      // undefined and unions with them stay errors.
      '@typescript-eslint/restrict-template-expressions': ['error', { allowNumber: true, allowBoolean: true }],
      // Down: `() => set(x)` and `void promise` are the idioms for a callback whose result is
      // ignored; a void call used as a value anywhere else stays an error.
      '@typescript-eslint/no-confusing-void-expression': ['error', { ignoreArrowShorthand: true, ignoreVoidOperator: true }],
      // Off: with noUncheckedIndexedAccess every indexed read is `T | undefined`; `items[i]!` right
      // after a bounds check (or a regex group that matched) is the honest form, and a fallback
      // value or an extra `if` would hide a broken invariant instead of failing at it.
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },

  // The tests, the benchmarks' harness, the stories' mocks: parsed JSON, mocks and fixtures.
  {
    files: ['test/**/*.{ts,tsx}', 'bench/**/*.{ts,tsx}'],
    rules: {
      // Off in tests and benchmarks: they read parsed JSON bodies, rows and error objects to
      // assert on them; typing each one would restate the assertion. src/ keeps these errors.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },

  // The config files themselves (JavaScript, outside tsconfig.json): no type information.
  {
    files: ['**/*.js'],
    extends: [js.configs.recommended, tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },

  // Last: turns off every rule that Prettier's formatting makes moot or would fight.
  prettier,
)
