import { getResponse, type RequestHandler } from 'msw'
import { type ReactNode, useState } from 'react'
import { createSessionClient, type LocalCopyStorage, memoryLocalCopy, SessionProvider } from 'workflow-session'
import { memoryStore, sessionHandlers } from 'workflow-session/msw'
import type { SessionStore, Steps } from 'workflow-session/server'
import { demoSteps } from '../demo/steps.js'

/** Routes the client's requests through msw handlers in the page: no service worker needed. */
function fetchThrough(handlers: RequestHandler[]): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init)
    const response = await getResponse(handlers, request)
    if (!response) throw new TypeError(`No mock answers ${request.method} ${request.url}`)
    return response
  }
}

const storySteps: Steps = {
  register: ({ workflow }) => {
    const email = workflow<{ email: string }>('signup').get('email', '')
    return { output: { message: email ? `Registered ${email}` : 'Registered without an email' } }
  },
  checkout: demoSteps.checkout!,
}

export interface MockSessionProps {
  /** msw handlers tried before the real session handler: slow answers, failures… */
  faults?: RequestHandler[]
  debounceMs?: number
  /** Where the client keeps its copy; default: memory. */
  storage?: LocalCopyStorage
  /** Steps besides the stories' own (a story's long step, say). */
  steps?: Steps
  /** The server's store; default: a fresh one in memory. */
  store?: SessionStore
  children: ReactNode
}

/** A SessionProvider whose server is the real handler over a fresh in-memory store. */
export function MockSession({ faults = [], debounceMs = 400, storage, steps, store, children }: MockSessionProps) {
  const [client] = useState(() =>
    createSessionClient({
      sessionId: `story-${Math.random().toString(36).slice(2, 12)}`,
      storage: storage ?? memoryLocalCopy(),
      fetch: fetchThrough([
        ...faults,
        ...sessionHandlers({ store: store ?? memoryStore(), steps: { ...storySteps, ...steps }, onError: () => {}, log: () => {} }),
      ]),
      retry: { baseMs: 300, maxMs: 1500 },
    }),
  )
  return (
    <SessionProvider client={client} debounceMs={debounceMs}>
      {children}
    </SessionProvider>
  )
}
