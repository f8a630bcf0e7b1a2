import { schemaFor, schemaProblemSync, type SessionSchema } from '../shared/schema.js'
import type { SessionPlugin } from './plugins.js'

/**
 * Checks each `set` against Standard Schemas (zod, valibot, arktype…) for variables and workflow
 * fields: a value they reject throws a `SessionValueError` with the schema's message and changes
 * nothing. Pass the same `schema` to the server's handler, which checks every patch too.
 *
 * @example
 * <SessionProvider plugins={[schemaValidation(schema)]}>
 */
export function schemaValidation(schema: SessionSchema): SessionPlugin {
  return { name: 'schemaValidation', validate: (key, value) => schemaProblemSync(schemaFor(schema, key), value) }
}
