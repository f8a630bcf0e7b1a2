import { readFile } from 'node:fs/promises'
import { type OutputUnit, Validator } from '@cfworker/json-schema'

// The document ships in the package (`files` holds docs/). This module is one folder below the
// package root both as src/conformance/openapi.ts and as dist/conformance/openapi.js, so one
// relative URL finds it from the sources and from the build.
const DOCUMENT = new URL('../../docs/openapi.json', import.meta.url)
// Only a name for $ref resolution: nothing is fetched from it.
const DOCUMENT_URI = 'https://workflow-session.invalid/openapi.json'

/** The protocol's operations, by their operationId in docs/openapi.json. */
export type Operation =
  | 'listSessions'
  | 'getSession'
  | 'patchSession'
  | 'deleteSession'
  | 'runStep'
  | 'adoptSession'
  | 'startRun'
  | 'listRuns'
  | 'getRun'
  | 'cancelRun'

const WHERE: Record<Operation, readonly [path: string, method: string]> = {
  listSessions: ['/', 'get'],
  getSession: ['/{sessionId}', 'get'],
  patchSession: ['/{sessionId}', 'post'],
  deleteSession: ['/{sessionId}', 'delete'],
  runStep: ['/{sessionId}/run/{step}', 'post'],
  adoptSession: ['/{sessionId}/adopt', 'post'],
  startRun: ['/{sessionId}/runs', 'post'],
  listRuns: ['/{sessionId}/runs', 'get'],
  getRun: ['/{sessionId}/runs/{runId}', 'get'],
  cancelRun: ['/{sessionId}/runs/{runId}/cancel', 'post'],
}

/** Why `body` is not what docs/openapi.json says `operation` answers with `status`, or null when it is (or nothing is said). */
export type ShapeProblem = (operation: Operation, status: number, body: unknown) => string | null

interface Shape {
  name: string
  validator: Validator
}

/**
 * Loads docs/openapi.json and answers shape questions with a JSON Schema 2020-12 validator per
 * response schema, each resolving `#/components/…` in the whole document.
 */
export function loadShapes(): Promise<ShapeProblem> {
  return (loading ??= readFile(DOCUMENT, 'utf8').then((text) => shapeProblems(JSON.parse(text) as OpenApiDocument)))
}

// Read and compiled once per process, shared by every run.
let loading: Promise<ShapeProblem> | undefined

function shapeProblems(document: OpenApiDocument): ShapeProblem {
  const shapes = new Map<string, Shape | null>()
  return (operation, status, body) => {
    const key = `${operation} ${status}`
    if (!shapes.has(key)) shapes.set(key, shapeOf(document, operation, status))
    const shape = shapes.get(key)
    if (!shape) return null
    const { valid, errors } = shape.validator.validate(body)
    return valid ? null : `a body that does not match ${shape.name} in docs/openapi.json: ${describe(errors)}`
  }
}

// Only the parts of an OpenAPI document this module reads.
interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, ResponseObject> }>>
  components: { responses: Record<string, ResponseObject> }
}
interface ResponseObject {
  $ref?: string
  content?: Record<string, { schema?: { $ref?: string } }>
}

function shapeOf(document: OpenApiDocument, operation: Operation, status: number): Shape | null {
  const [path, method] = WHERE[operation]
  let pointer = `/paths/${escape(path)}/${method}/responses/${status}`
  let response = document.paths[path]?.[method]?.responses[status]
  // A status the operation does not list is still an error: it must be the protocol's error.
  if (!response && status >= 400) response = { $ref: '#/components/responses/Error' }
  if (!response) return null
  if (response.$ref) {
    pointer = response.$ref.slice(1)
    response = document.components.responses[response.$ref.split('/').pop()!]
  }
  const schema = response?.content?.['application/json']?.schema
  if (!schema) return null
  pointer = schema.$ref?.startsWith('#/') ? schema.$ref.slice(1) : `${pointer}/content/application~1json/schema`
  const name = schema.$ref ? schema.$ref.split('/').pop()! : `the ${operation} ${status} body`
  const validator = new Validator({ $ref: `${DOCUMENT_URI}#${pointer}` }, '2020-12', false)
  validator.addSchema(document, DOCUMENT_URI)
  return { name, validator }
}

const escape = (segment: string) => segment.replace(/~/g, '~0').replace(/\//g, '~1')

/** Keywords whose errors only say "something inside failed": the useful error comes after them. */
const WRAPPERS = new Set([
  '$ref',
  'properties',
  'items',
  'prefixItems',
  'additionalProperties',
  'propertyNames',
  'allOf',
  'anyOf',
  'oneOf',
  'then',
  'else',
])

/** The first two errors that say what is wrong, each with where in the body: `/sessions/0/variables: not allowed`. */
function describe(errors: OutputUnit[]): string {
  const leaves = errors.filter((error) => !WRAPPERS.has(error.keyword))
  return (leaves.length > 0 ? leaves : errors)
    .slice(0, 2)
    .map((error) => {
      let at = error.instanceLocation.replace(/^#/, '')
      try {
        at = decodeURIComponent(at)
      } catch {
        // Left encoded: still names the place.
      }
      if (at.length > 80) at = `${at.slice(0, 80)}…`
      const message = error.keyword === 'false' ? 'not allowed here' : error.error.replace(/\.$/, '')
      return `${at || '(the body)'}: ${message.length > 120 ? `${message.slice(0, 120)}…` : message}`
    })
    .join('; ')
}
