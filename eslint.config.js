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
    extends: [js.configs.recommended, tseslint.configs.strictTypeChecked],
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
      // Off: an async function without `await` is how an implementation of a Promise-returning
      // interface (LocalCopyStorage, a store backend, an msw resolver, a check's run) turns a throw
      // into a rejection; dropping `async` would make those throws synchronous for the caller.
      '@typescript-eslint/require-await': 'off',
      // Off: the public getters take the caller's type by design, as useState<T> does
      // (client.get<T>, getVariable<T>, store.read<T>, importDriver<Driver>); a type parameter used
      // once there is the API, and removing it would break every caller that names the type.
      '@typescript-eslint/no-unnecessary-type-parameters': 'off',
      // Set: a destructured key left out of the rest (`const { SESSION_STORE: _, ...env } = process.env`)
      // is how a copy without that key is made.
      '@typescript-eslint/no-unused-vars': ['error', { ignoreRestSiblings: true }],
      // Set: `this: void` is allowed, the form unbound-method asks for on an interface's methods
      // that callers may take off their object (`const { open, start } = useSessions()`).
      '@typescript-eslint/no-invalid-void-type': ['error', { allowAsThisParameter: true }],
    },
  },

  // React's rules where React runs: the hooks, the components of tests, stories, demo and
  // benchmarks. Elsewhere `use` is a plain name (the store backends' `read(sessionId, use)` callback), not React's hook.
  {
    files: ['src/react/**/*.{ts,tsx}', '**/*.tsx'],
    extends: [reactHooks.configs.flat.recommended],
  },

  // The tests, and the conformance suite (src/conformance: a test suite the package ships, run
  // against a backend over HTTP).
  {
    files: ['test/**/*.{ts,tsx}', 'src/conformance.ts', 'src/conformance/**/*.ts'],
    rules: {
      // Off: tests read parsed JSON bodies, rows and error objects to assert on them, and the
      // conformance checks read bodies that were just validated against docs/openapi.json; typing
      // each one would restate the assertion. The rest of src/ keeps these errors.
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
    },
  },
  {
    files: ['test/**/*.{ts,tsx}'],
    rules: {
      // Off in tests: their components count renders and hand what a hook returned to the test by
      // writing to the test's variables, which is how a test sees inside a render.
      'react-hooks/globals': 'off',
      'react-hooks/immutability': 'off',
      // Off in tests: they trim plain records (a snapshot's variables, a header object) by a
      // computed key to build the next expectation.
      '@typescript-eslint/no-dynamic-delete': 'off',
      // Off in tests: teardown guards what setup may not have made (`await browser?.close()` after a
      // beforeAll that failed), with the variable declared as the tests use it once it is there.
      '@typescript-eslint/no-unnecessary-condition': 'off',
      // Off in tests: a rejection handler names the error it expects (execFile's code and output)
      // to assert on it.
      '@typescript-eslint/use-unknown-in-catch-callback-variable': 'off',
      // Off in tests: steps and renders print variables the test itself set to strings.
      '@typescript-eslint/no-base-to-string': 'off',
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
