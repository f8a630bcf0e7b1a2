import { parseWorkflowKey } from './workflow-keys.js'

/**
 * The Standard Schema v1 interface (standardschema.dev), which zod (3.24+), valibot (1.0+) and
 * arktype (2.0+) implement. Only the part this package calls.
 */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  readonly '~standard': {
    readonly version: 1
    readonly vendor: string
    readonly validate: (value: unknown) => StandardResult<Output> | Promise<StandardResult<Output>>
    readonly types?: { readonly input: Input; readonly output: Output } | undefined
  }
}

type StandardResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | {
      readonly issues: ReadonlyArray<{
        readonly message: string
        readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined
      }>
    }

/**
 * Schemas for a session's variables, shared by client and server: the same object passed to
 * `SessionProvider`/`createSessionClient` and to `createSessionHandler`.
 *
 * @example
 * export const schema: SessionSchema = {
 *   variables: { email: z.string().email() },
 *   workflows: { checkout: { quantity: z.number().int().positive() } },
 * }
 */
export interface SessionSchema {
  /** By variable name. */
  variables?: Record<string, StandardSchemaV1>
  /** By workflow id, then by field. */
  workflows?: Record<string, Record<string, StandardSchemaV1>>
}

/** The schema that governs variable `name`, if any. */
export function schemaFor(schema: SessionSchema | undefined, name: string): StandardSchemaV1 | undefined {
  if (!schema) return undefined
  const parsed = parseWorkflowKey(name)
  if (!parsed) return schema.variables && Object.hasOwn(schema.variables, name) ? schema.variables[name] : undefined
  if (!('field' in parsed)) return undefined
  const fields = schema.workflows && Object.hasOwn(schema.workflows, parsed.workflowId) ? schema.workflows[parsed.workflowId] : undefined
  return fields && Object.hasOwn(fields, parsed.field) ? fields[parsed.field] : undefined
}

function describe(result: StandardResult<unknown>): string | null {
  if (!result.issues) return null
  return result.issues
    .map((issue) => {
      const path = (issue.path ?? []).map((part) => String(typeof part === 'object' ? part.key : part)).join('.')
      return path ? `${path}: ${issue.message}` : issue.message
    })
    .join('; ')
}

/** The schema's message for an invalid value, or null. Synchronous: an async schema is reported as an error. */
export function schemaProblemSync(schema: StandardSchemaV1 | undefined, value: unknown): string | null {
  if (!schema) return null
  const result = schema['~standard'].validate(value)
  if (result instanceof Promise)
    throw new TypeError(`The schema (${schema['~standard'].vendor}) validates asynchronously; the client needs a synchronous one`)
  return describe(result)
}

/** The schema's message for an invalid value, or null. */
async function schemaProblem(schema: StandardSchemaV1 | undefined, value: unknown): Promise<string | null> {
  return schema ? describe(await schema['~standard'].validate(value)) : null
}

/** The first schema refusal among `variables`, as `variable "name": message`, or null. */
export async function firstSchemaProblem(
  schema: SessionSchema | undefined,
  variables: Record<string, unknown> | undefined,
): Promise<string | null> {
  if (!schema || !variables) return null
  for (const [name, value] of Object.entries(variables)) {
    // A copy: a validator that changes its input in place cannot change what was checked and is stored.
    const problem = await schemaProblem(schemaFor(schema, name), structuredClone(value))
    if (problem) return `variable "${name}": ${problem}`
  }
  return null
}
