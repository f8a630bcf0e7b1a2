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
import type { SessionSchema, StandardSchemaV1 } from '../../src/shared/schema.js'

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
  /** The app's schema, as the JSON type each named variable must have: both languages build their validator from it. */
  types?: Record<string, 'number' | 'string'>
  expectedSetAside?: Array<{ name: string; problem: string }>
}

const { cases, refused } = JSON.parse(readFileSync(new URL('./migrations-cases.json', import.meta.url), 'utf8')) as {
  cases: Case[]
  refused: Array<{ name: string; declaration: MigrationsDeclaration; from?: number; error: string }>
}

/** A Standard Schema for each named variable that accepts only values of its JSON type, with the message both languages give. */
function schemaOf(types: Record<string, 'number' | 'string'>): SessionSchema {
  const typed = (type: string): StandardSchemaV1 => ({
    '~standard': {
      version: 1,
      vendor: 'test',
      validate: (value) => (typeof value === type ? { value } : { issues: [{ message: `expected a ${type}` }] }),
    },
  })
  return { variables: Object.fromEntries(Object.entries(types).map(([name, type]) => [name, typed(type)])) }
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
    const migrations = defineMigrations(testCase.declaration, functions, testCase.types && { schema: schemaOf(testCase.types) })
    const before = structuredClone(testCase.variables)
    const migrated = migrations.migrate(testCase.variables, testCase.from)
    const { version } = testCase.declaration
    expect(migrated).toEqual({
      variables: testCase.expected,
      version,
      changed: !testCase.unchanged,
      setAside: testCase.expectedSetAside ?? [],
    })
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
