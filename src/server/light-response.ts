/**
 * A `Response` that holds its status, headers and text body as they were given, and builds the
 * real `Response` only when someone asks for more (its stream, `json()`, `clone()`…). The Node
 * adapter writes such a response straight to the socket: no web stream is made or read, which is
 * most of what a JSON answer costs otherwise. Anywhere else it is a `Response` like any other
 * (`instanceof Response` holds).
 */

const PARTS = Symbol('workflow-session.response-parts')
const REAL = Symbol('workflow-session.response')

/** What the Node adapter writes of a light response. */
export interface ResponseParts {
  status: number
  headers: Readonly<Record<string, string>>
  body: string | null
}

interface LightResponse extends Response {
  [PARTS]: ResponseParts
  [REAL]?: Response
}

function LightResponse(this: LightResponse, parts: ResponseParts) {
  this[PARTS] = parts
}
Object.setPrototypeOf(LightResponse.prototype, Response.prototype)

const real = (response: LightResponse): Response =>
  (response[REAL] ??= new Response(response[PARTS].body, { status: response[PARTS].status, headers: response[PARTS].headers }))

for (const name of ['body', 'bodyUsed', 'headers', 'redirected', 'statusText', 'type', 'url'] as const) {
  Object.defineProperty(LightResponse.prototype, name, {
    get(this: LightResponse) {
      return real(this)[name]
    },
  })
}
Object.defineProperty(LightResponse.prototype, 'status', {
  get(this: LightResponse) {
    return this[PARTS].status
  },
})
Object.defineProperty(LightResponse.prototype, 'ok', {
  get(this: LightResponse) {
    return this[PARTS].status >= 200 && this[PARTS].status < 300
  },
})
for (const name of ['arrayBuffer', 'blob', 'bytes', 'clone', 'formData', 'json', 'text'] as const) {
  Object.defineProperty(LightResponse.prototype, name, {
    value(this: LightResponse, ...args: unknown[]) {
      const response = real(this) as unknown as Record<string, (...rest: unknown[]) => unknown>
      return response[name]!.apply(response, args)
    },
  })
}

/** A response with a text body (or none) that the Node adapter can write without streams. */
export function lightResponse(body: string | null, status: number, headers: Readonly<Record<string, string>>): Response {
  return new (LightResponse as unknown as new (parts: ResponseParts) => Response)({ status, headers, body })
}

/** The parts of a light response that nobody has turned into a real one yet (its body unread), else undefined. */
export function partsOf(response: Response): ResponseParts | undefined {
  const light = response as Partial<LightResponse>
  return light[PARTS] !== undefined && light[REAL] === undefined ? light[PARTS] : undefined
}
