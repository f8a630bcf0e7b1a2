'use client'

import { createContext, useContext } from 'react'
import type { SessionClient } from '../client/session-client.js'

export const SessionContext = createContext<SessionClient | null>(null)

/** How the provider switches sessions: what `useSessions` calls. */
export interface SessionSwitch {
  open(this: void, sessionId: string): void
  /** Starts a new, empty session and returns its id. */
  start(this: void): string
}

export const SessionSwitchContext = createContext<SessionSwitch | null>(null)

/**
 * The session client of the nearest `SessionProvider`: for code that needs the framework-free
 * API (subscribe, flush, run) from inside React.
 *
 * @example
 * const client = useSessionClient()
 * const onSubmit = async () => { await client.flush(); navigate('/done') }
 */
export function useSessionClient(): SessionClient {
  const client = useContext(SessionContext)
  if (!client) throw new Error('workflow-session: this hook must be used inside <SessionProvider>')
  return client
}
