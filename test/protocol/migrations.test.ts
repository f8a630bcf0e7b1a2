import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import {
  defineMigrations,
  MigrationError,
  type MigrationFunctions,
  type MigrationsDeclaration,
  type PatchChanges,
} from '../../src/shared/migrations.js'
import type { Variables } from '../../src/shared/protocol.js'

// The cases both languages run (python/tests/test_migrations.py reads the same file): one
// declaration, the same results.

interface Case {
  name: string
  declaration: MigrationsDeclaration
  functions?: string[]
  from: number
  variables: Variables
  expected: Variables
  unchanged?: boolean
  patch: PatchChanges
  expectedPatch?: PatchChanges
  patchError?: string
  also?: Array<{ from: number; variables: Variables; expected: Variables }>
}

const { cases, refused } = JSON.parse(readFileSync(new URL('./migrations-cases.json', import.meta.url), 'utf8')) as {
  cases: Case[]
  refused: Array<{ name: string; declaration: MigrationsDeclaration; from?: number; error: string }>
}

/** The test functions both languages register under the same names. */
const functions: MigrationFunctions = {
  splitName: ({ name, ...rest }) => {
    const [firstName = '', ...last] = String(name).split(' ')
    return { ...rest, firstName, lastName: last.join(' ') }
  },
}

describe('schema migrations', () => {
  it.each(cases)('$name', (testCase) => {
    const migrations = defineMigrations(testCase.declaration, functions)
    const before = structuredClone(testCase.variables)
    const migrated = migrations.migrate(testCase.variables, testCase.from)
    expect(migrated).toEqual({ variables: testCase.expected, version: testCase.declaration.version, changed: !testCase.unchanged })
    expect(testCase.variables, 'the variables given are not changed').toEqual(before)
    for (const more of testCase.also ?? []) expect(migrations.migrate(more.variables, more.from).variables).toEqual(more.expected)
    if (testCase.patchError) {
      expect(() => migrations.migratePatch(testCase.patch, testCase.from)).toThrow(MigrationError)
      expect(() => migrations.migratePatch(testCase.patch, testCase.from)).toThrow(testCase.patchError)
    } else expect(migrations.migratePatch(testCase.patch, testCase.from)).toEqual(testCase.expectedPatch)
  })

  it.each(refused)('refuses $name with a MigrationError', ({ declaration, from, error }) => {
    const attempt = () => defineMigrations(declaration, functions).migrate({}, from ?? 1)
    expect(attempt).toThrow(MigrationError)
    expect(attempt).toThrow(error)
  })

  it('gives the declaration back as JSON, a copy the caller cannot change afterwards', () => {
    const declaration: MigrationsDeclaration = { version: 2, migrations: [{ to: 2, steps: [{ op: 'drop', name: 'x' }] }] }
    const migrations = defineMigrations(declaration)
    declaration.migrations[0]!.steps.push({ op: 'drop', name: 'y' })
    expect(migrations.declaration).toEqual({ version: 2, migrations: [{ to: 2, steps: [{ op: 'drop', name: 'x' }] }] })
    expect(migrations.migrate({ x: 1, y: 2 }, 1).variables).toEqual({ y: 2 })
    expect(JSON.parse(JSON.stringify(migrations.declaration))).toEqual(migrations.declaration)
  })
})
