import type { JsonValue, Variables } from './protocol.js'
import { schemaFor, schemaProblemSync, type SessionSchema } from './schema.js'
import { workflowDataKey } from './workflow-keys.js'

/**
 * Schema versions and migrations of a session's variables: the one declaration an app makes of
 * how the shape of its variables changed, from version 1 up. Data steps are plain JSON (the
 * Python package reads the same declaration); where data is not enough, a step names a function
 * that each side registers under that name.
 *
 * @example
 * const migrations = defineMigrations({
 *   version: 3,
 *   migrations: [
 *     { to: 2, steps: [{ op: 'rename', from: 'address', to: 'shippingAddress' }] },
 *     { to: 3, steps: [{ op: 'default', name: 'country', value: 'NL' }, { op: 'drop', name: 'legacyFlag' }] },
 *   ],
 * })
 * migrations.migrate({ address: 'Main St 1' }, 1).variables // → { shippingAddress: 'Main St 1', country: 'NL' }
 */

/** One step of a migration, as JSON. */
type MigrationStep =
  /** The variable `from` is now called `to` (its value moves; one already under `to` is replaced). */
  | { op: 'rename'; from: string; to: string }
  /** A variable that is missing gets `value`. */
  | { op: 'default'; name: string; value: JsonValue }
  /** The variable is no longer used: it is removed. */
  | { op: 'drop'; name: string }
  /** A plain variable moves into workflow `workflow`'s data, as its field `field` (default: the same name). */
  | { op: 'intoWorkflow'; name: string; workflow: string; field?: string }
  /** A field of workflow `workflow`'s data moves out, as the plain variable `name` (default: the field's name). */
  | { op: 'outOfWorkflow'; workflow: string; field: string; name?: string }
  /** Where data is not enough: the function registered under `name` makes the new variables from the old. */
  | { op: 'function'; name: string }

/** The steps that take the variables from version `to - 1` to `to`. */
interface Migration {
  to: number
  steps: MigrationStep[]
}

/** An app's schema: its current version, and the migrations from version 1 up to it, in order. */
export interface MigrationsDeclaration {
  version: number
  migrations: Migration[]
}

/**
 * The variable where a migration keeps the values the app's schema refuses once migrated, by
 * name: `{ [name]: { value, problem, schemaVersion } }`. Nothing is thrown away: the value is out
 * of the way of the new code, and the app can show it, fix it or drop it.
 */
export const SET_ASIDE_KEY = 'ws:setAside'

/** A value a migration set aside (under {@link SET_ASIDE_KEY}): what it was, why, and in which version. */
export interface SetAsideValue {
  value: JsonValue
  /** The schema's message. */
  problem: string
  /** The schema version it was migrated to when the schema refused it. */
  schemaVersion: number
}

export interface MigrationOptions {
  /**
   * The app's schema (the same `SessionSchema` as `schemaValidation` and the handler's; it must
   * validate synchronously): a migrated value it refuses is set aside, not kept under its name.
   */
  schema?: SessionSchema
}

/** The functions `function` steps name, by name: old variables in, new variables out (a copy). */
export type MigrationFunctions = Record<string, (variables: Variables) => Variables>

/** A patch's changes, as a migration moves them. */
export interface PatchChanges {
  variables: Variables
  deleted: string[]
}

/** Why a migration cannot be made: a declaration that is wrong, a version from the future, a patch a function would have to move. */
export class MigrationError extends Error {
  override name = 'MigrationError'
}

export interface Migrations {
  /** The current schema version. */
  readonly version: number
  /** The declaration as JSON (a fresh copy each time), for the other side: a Python server reads the same. */
  readonly declaration: MigrationsDeclaration
  /**
   * The variables of schema version `from` made current: each migration after `from` in turn.
   * `changed` is false when there was nothing to do. A version above the current one (written
   * by newer code) throws a {@link MigrationError}: old code must not guess at a newer shape.
   * With a `schema`, the values it refuses once migrated move under {@link SET_ASIDE_KEY}, and
   * `setAside` names them.
   */
  migrate(
    variables: Variables,
    from: number,
  ): { variables: Variables; version: number; changed: boolean; setAside: Array<{ name: string; problem: string }> }
  /**
   * A patch written against schema version `from`, made current: renamed and moved names follow
   * their variable, dropped ones go, defaults do not apply (a patch sets only what it names).
   * A `function` step cannot say where a patch's values go: a {@link MigrationError}.
   */
  migratePatch(changes: PatchChanges, from: number): PatchChanges
  /** A snapshot kept in its `schemaVersion` (absent: 1), made current; a current or newer one is returned as it is. */
  migrateSnapshot<T extends { variables: Variables; schemaVersion?: number }>(snapshot: T): T
  /**
   * A patch body kept in its `schemaVersion` (absent: 1), made current where the steps can move
   * it. Across a function step, given the snapshot the patch was written on (in the patch's
   * version), the whole view is migrated with and without the patch, and the difference is the
   * patch. Otherwise (current, newer, or no such snapshot) it is returned as it is, and the server
   * says whether it takes it.
   */
  migrateBody<T extends PatchChanges & { schemaVersion?: number }>(
    body: T,
    base?: { variables: Variables; schemaVersion?: number } | null,
  ): T
}

const OPS = new Set(['rename', 'default', 'drop', 'intoWorkflow', 'outOfWorkflow', 'function'])

/** Checks a declaration (versions from 2 up without a gap, every step known, every function given) and returns its migrations. */
export function defineMigrations(
  declaration: MigrationsDeclaration,
  functions: MigrationFunctions = {},
  { schema }: MigrationOptions = {},
): Migrations {
  const { version, migrations } = declaration as Partial<MigrationsDeclaration>
  if (!Number.isSafeInteger(version) || version! < 1) throw new MigrationError('version must be a whole number from 1')
  if (!Array.isArray(migrations)) throw new MigrationError('migrations must be an array')
  if (migrations.length !== version! - 1)
    throw new MigrationError(`version ${version} needs ${version! - 1} migrations (to 2 … ${version}), got ${migrations.length}`)
  migrations.forEach((migration, index) => {
    if (migration.to !== index + 2)
      throw new MigrationError(`migration ${index + 1} must have "to": ${index + 2}, got ${String(migration.to)}`)
    if (!Array.isArray(migration.steps)) throw new MigrationError(`migration to ${migration.to}: steps must be an array`)
    for (const step of migration.steps) {
      const problem = stepProblem(step)
      if (problem) throw new MigrationError(`migration to ${migration.to}: ${problem}`)
      if (step.op === 'function' && !(Object.hasOwn(functions, step.name) && typeof functions[step.name] === 'function'))
        throw new MigrationError(`migration to ${migration.to}: no function named "${step.name}" was given`)
    }
  })
  const json = JSON.stringify(declaration)
  const copy = JSON.parse(json) as MigrationsDeclaration
  const after = (from: number) => {
    if (!Number.isSafeInteger(from) || from < 0) throw new MigrationError(`a schema version is a whole number, got ${from}`)
    if (from > copy.version) throw new MigrationError(`schema version ${from} is newer than this code's (${copy.version})`)
    // Version 0: written before any schema was declared, the same shape as version 1.
    return copy.migrations.filter((migration) => migration.to > Math.max(from, 1))
  }
  const made: Migrations = {
    version: copy.version,
    get declaration() {
      return JSON.parse(json) as MigrationsDeclaration
    },
    migrate(variables, from) {
      const pending = after(from)
      let current: Variables = { ...variables }
      for (const migration of pending) for (const step of migration.steps) current = applyStep(current, step, functions)
      const checked = schema && pending.length > 0 ? setAsideRefused(current, schema, copy.version) : { variables: current, refused: [] }
      const changed = checked.refused.length > 0 || pending.some((migration) => migration.steps.length > 0)
      return { variables: checked.variables, version: copy.version, changed, setAside: checked.refused }
    },
    migratePatch(changes, from) {
      let current: PatchChanges = { variables: { ...changes.variables }, deleted: [...changes.deleted] }
      for (const migration of after(from))
        for (const step of migration.steps) {
          if (step.op === 'function')
            throw new MigrationError(`a patch of schema version ${from} cannot be moved by the function step "${step.name}"`)
          current = patchStep(current, step)
        }
      return current
    },
    migrateSnapshot(snapshot) {
      const from = snapshot.schemaVersion ?? 1
      if (from >= copy.version) return snapshot
      return { ...snapshot, variables: made.migrate(snapshot.variables, from).variables, schemaVersion: copy.version }
    },
    migrateBody(body, base) {
      const from = body.schemaVersion ?? 1
      if (from >= copy.version) return body
      try {
        return { ...body, ...made.migratePatch(body, from), schemaVersion: copy.version }
      } catch (error) {
        if (!(error instanceof MigrationError)) throw error
        if (!base || (base.schemaVersion ?? 1) !== from) return body
        const written = Object.fromEntries(Object.entries(base.variables).filter(([name]) => !body.deleted.includes(name)))
        Object.assign(written, body.variables)
        const changes = changesBetween(made.migrate(base.variables, from).variables, made.migrate(written, from).variables)
        return { ...body, ...changes, schemaVersion: copy.version }
      }
    },
  }
  return made
}

const isName = (value: unknown) => typeof value === 'string' && value !== ''

/** What is wrong with a step's fields, or null. */
function stepProblem(step: MigrationStep): string | null {
  const given: unknown = step
  const fields = (typeof given === 'object' && given !== null ? given : {}) as Record<string, unknown>
  const needs = {
    rename: ['from', 'to'],
    default: ['name'],
    drop: ['name'],
    intoWorkflow: ['name', 'workflow'],
    outOfWorkflow: ['workflow', 'field'],
    function: ['name'],
  }[String(fields.op)]
  if (!needs || !OPS.has(String(fields.op))) return `unknown step ${JSON.stringify(step)}`
  const missing = needs.find((field) => !isName(fields[field]))
  if (missing) return `step ${JSON.stringify(step)} needs "${missing}" (a name)`
  if (step.op === 'default' && !Object.hasOwn(step, 'value')) return `step ${JSON.stringify(step)} needs "value"`
  return null
}

/** Where a step moves a name: its new name, null when it is dropped, or the name itself. */
function movedName(name: string, step: MigrationStep): string | null {
  if (step.op === 'rename') return name === step.from ? step.to : name
  if (step.op === 'drop') return name === step.name ? null : name
  if (step.op === 'intoWorkflow') return name === step.name ? workflowDataKey(step.workflow, step.field ?? step.name) : name
  if (step.op === 'outOfWorkflow') return name === workflowDataKey(step.workflow, step.field) ? (step.name ?? step.field) : name
  return name
}

function applyStep(variables: Variables, step: MigrationStep, functions: MigrationFunctions): Variables {
  if (step.op === 'function') return { ...functions[step.name]!(structuredClone(variables)) }
  if (step.op === 'default')
    return Object.hasOwn(variables, step.name) ? variables : { ...variables, [step.name]: structuredClone(step.value) }
  // Where each name goes (only those that move or are dropped), and where moved values land: O(variables).
  const moves = new Map<string, string | null>()
  for (const name of Object.keys(variables)) {
    const to = movedName(name, step)
    if (to !== name) moves.set(name, to)
  }
  const landing = new Set([...moves.values()].filter((name): name is string => name !== null))
  const moved: Variables = {}
  // The names that stay first (not those a moved value lands on: it replaces them), then the moved ones.
  for (const [name, value] of Object.entries(variables)) if (!moves.has(name) && !landing.has(name)) moved[name] = value
  for (const [name, to] of moves) if (to !== null) moved[to] = variables[name]!
  return moved
}

function patchStep(changes: PatchChanges, step: MigrationStep): PatchChanges {
  if (step.op === 'default' || step.op === 'function') return changes
  const variables: Variables = {}
  const entries = Object.entries(changes.variables)
  // A name a moved variable lands on held, in the patch's version, the variable the move replaced:
  // what the patch says of it is not sent (nor deleted), as `migrate` drops that variable.
  const landing = landingOf(step)
  const stays = (name: string) => movedName(name, step) === name && name !== landing
  // The names that stay first, then the moved ones: a moved value wins, as in `migrate`.
  for (const [name, value] of entries) if (stays(name)) variables[name] = value
  for (const [name, value] of entries) {
    const to = movedName(name, step)
    if (to !== null && to !== name) variables[to] = value
  }
  const moved = changes.deleted.filter((name) => name !== landing || movedName(name, step) !== name).map((name) => movedName(name, step))
  const deleted = [...new Set(moved.filter((name): name is string => name !== null))]
  return { variables, deleted: deleted.filter((name) => !Object.hasOwn(variables, name)) }
}

/** The name a step moves a variable onto (replacing what was there), if it moves one. */
function landingOf(step: MigrationStep): string | null {
  if (step.op === 'rename') return step.to
  if (step.op === 'intoWorkflow') return workflowDataKey(step.workflow, step.field ?? step.name)
  if (step.op === 'outOfWorkflow') return step.name ?? step.field
  return null
}

/**
 * What turns `before` into `after`, as a patch: the variables new or changed (by their JSON) and
 * the names gone. What a migration changed, for a store to write and a client to queue.
 */
export function changesBetween(before: Variables, after: Variables): PatchChanges {
  const variables: Variables = {}
  for (const [name, value] of Object.entries(after))
    if (!Object.hasOwn(before, name) || JSON.stringify(before[name]) !== JSON.stringify(value)) variables[name] = value
  return { variables, deleted: Object.keys(before).filter((name) => !Object.hasOwn(after, name)) }
}

/** The variables without the values `schema` refuses, which move under {@link SET_ASIDE_KEY} beside what earlier migrations set aside; and their names. */
function setAsideRefused(
  variables: Variables,
  schema: SessionSchema,
  version: number,
): { variables: Variables; refused: Array<{ name: string; problem: string }> } {
  const refused: Array<{ name: string; problem: string }> = []
  const kept: Variables = {}
  const earlier = variables[SET_ASIDE_KEY]
  const aside: Record<string, JsonValue> = earlier && typeof earlier === 'object' && !Array.isArray(earlier) ? { ...earlier } : {}
  for (const [name, value] of Object.entries(variables)) {
    const problem = name === SET_ASIDE_KEY ? null : schemaProblemSync(schemaFor(schema, name), value)
    if (problem === null) kept[name] = value
    else {
      refused.push({ name, problem })
      aside[name] = { value, problem, schemaVersion: version }
    }
  }
  return { variables: refused.length > 0 ? { ...kept, [SET_ASIDE_KEY]: aside } : variables, refused }
}
