'use client'

import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useCallback, useContext } from 'react'
import type { SessionSummary } from '../shared/protocol.js'
import { SessionSwitchContext, useSessionClient } from './context.js'

export interface UseSessionsResult {
  /** The caller's sessions, newest `updatedAt` first (the server decides whose they are). */
  sessions: SessionSummary[]
  isLoading: boolean
  error: Error | null
  /** The session the provider shows now. */
  currentId: string
  /** Shows another session (and remembers it for the next visit). */
  open(this: void, sessionId: string): void
  /** Starts a new, empty session; returns its id. */
  start(this: void): string
  /** Deletes a session; deleting the current one starts a new one. */
  remove(this: void, sessionId: string): Promise<void>
  refetch(this: void): void
}

/**
 * The caller's sessions, to let a person pick up where they left off, start over, or clean up.
 *
 * @example
 * const { sessions, currentId, open, start, remove } = useSessions()
 * sessions.map((s) => <button key={s.sessionId} onClick={() => open(s.sessionId)}>{s.updatedAt}</button>)
 */
export function useSessions(): UseSessionsResult {
  const client = useSessionClient()
  const sessionSwitch = useContext(SessionSwitchContext)!
  const queryClient = useQueryClient()
  const queryKey = ['workflow-session', client.endpoint, 'sessions'] as const
  const list = useQuery({ queryKey, queryFn: () => client.listSessions() })
  const refetch = list.refetch
  const removal = useMutation({
    mutationFn: async (sessionId: string) => {
      if (sessionId === client.sessionId) sessionSwitch.start()
      await client.deleteSession(sessionId)
    },
    onSettled: () => queryClient.invalidateQueries({ queryKey }),
  })
  const open = useCallback(
    (sessionId: string) => {
      sessionSwitch.open(sessionId)
      void refetch()
    },
    [sessionSwitch, refetch],
  )
  return {
    sessions: list.data ?? [],
    isLoading: list.isLoading,
    error: list.error,
    currentId: client.sessionId,
    open,
    start: sessionSwitch.start,
    remove: removal.mutateAsync,
    refetch: () => void refetch(),
  }
}
