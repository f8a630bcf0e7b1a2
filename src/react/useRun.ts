'use client'

import { useMutation } from '@tanstack/react-query'
import { useCallback } from 'react'
import type { SessionError } from '../client/errors.js'
import type { JsonValue } from '../shared/protocol.js'
import { useSessionClient } from './context.js'

export interface UseRunResult<Output> {
  /** Flushes pending changes, then runs the step; errors land in `error`, not in a rejection. */
  run: (input?: JsonValue) => void
  /** As `run`, but resolves with the output and rejects with the error. */
  runAsync: (input?: JsonValue) => Promise<Output>
  isRunning: boolean
  /** The last run's output, until the next run starts. */
  output: Output | undefined
  /** Why the last run failed: the flush (the step was then not called) or the step itself. */
  error: SessionError | Error | null
  reset: () => void
}

/**
 * A server step of the workflow. `run()` first waits until every change made before it is on
 * the server, so the step always sees what the person typed.
 *
 * @example
 * const { run, isRunning, output, error } = useRun<{ total: number }>('checkout')
 * <button onClick={() => run()} disabled={isRunning}>Check out</button>
 */
export function useRun<Output = JsonValue>(step: string): UseRunResult<Output> {
  const client = useSessionClient()
  const mutation = useMutation<Output, SessionError | Error, JsonValue | undefined>({
    mutationKey: ['workflow-session', 'run', client.sessionId, step],
    mutationFn: (input) => client.run<Output>(step, input),
  })
  const { mutate, mutateAsync } = mutation
  return {
    run: useCallback((input?: JsonValue) => mutate(input), [mutate]),
    runAsync: useCallback((input?: JsonValue) => mutateAsync(input), [mutateAsync]),
    isRunning: mutation.isPending,
    output: mutation.data,
    error: mutation.error,
    reset: mutation.reset,
  }
}
