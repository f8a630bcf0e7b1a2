'use client'

import { useMutation } from '@tanstack/react-query'
import { useCallback, useEffect, useMemo, useState, useSyncExternalStore } from 'react'
import type { SessionError } from '../client/errors.js'
import { RunFailedError } from '../client/runs.js'
import type { JsonValue, RunRecord, RunStatus } from '../shared/protocol.js'
import { useSessionClient } from './context.js'

export interface UseRunResult<Output> {
  /** Flushes pending changes, then runs the step; errors land in `error`, not in a rejection. */
  run: (input?: JsonValue) => void
  /** As `run`, but resolves with the output and rejects with the error. */
  runAsync: (input?: JsonValue) => Promise<Output>
  /** Cancels the step's run that is going: its signal fires on the server, and nothing it returns is merged. */
  cancel: () => Promise<void>
  /**
   * The step's latest run in this session: started here, in another tab, or before a reload (it
   * is found and followed until it ends). Null before any, or after `reset()`.
   */
  current: RunRecord<Output> | null
  /** `idle` without a run; else the run's status. */
  status: RunStatus | 'idle'
  /** The latest progress value the step reported, or null. */
  progress: JsonValue
  isRunning: boolean
  /** The last run's output, until the next run starts. */
  output: Output | undefined
  /** Why the last run failed: the flush (the step was then not called), the start, or the run's end (a `RunFailedError`). */
  error: SessionError | Error | null
  reset: () => void
}

/**
 * A server step of the workflow, run as a run the server keeps. `run()` first waits until every
 * change made before it is on the server, so the step always sees what the person typed; then
 * it waits for the step however long it takes. A reload, or another tab, shows the same run
 * (status, progress) and its output when it ends. Closing the page does not cancel it.
 *
 * @example
 * const { run, cancel, isRunning, progress, output, error } = useRun<{ total: number }>('checkout')
 * <button onClick={() => run()} disabled={isRunning}>Check out</button>
 */
export function useRun<Output = JsonValue>(step: string): UseRunResult<Output> {
  const client = useSessionClient()
  const runs = useSyncExternalStore(client.subscribeRuns, client.getRuns, client.getRuns)
  const [dismissed, setDismissed] = useState<string | null>(null)
  const latest = (runs.find((run) => run.step === step) ?? null) as RunRecord<Output> | null
  const current = latest && latest.runId !== dismissed ? latest : null
  const mutation = useMutation<Output, SessionError | Error, JsonValue | undefined>({
    mutationKey: ['workflow-session', 'run', client.sessionId, step],
    mutationFn: (input) => client.run<Output>(step, input),
  })
  const { mutate, mutateAsync, reset: resetMutation } = mutation

  // The session's runs, once: a run of this step that is going (started before a reload, or in
  // another tab) is then found, and followed below.
  useEffect(() => {
    client.refreshRuns().catch(() => {})
  }, [client])
  const runningId = current?.status === 'running' ? current.runId : null
  // Followed once the server has it (rev 1 on): a run this page starts is followed by its run().
  const followId = runningId && current && current.rev > 0 ? runningId : null
  useEffect(() => {
    if (followId) client.watchRun(followId).catch(() => {})
  }, [client, followId])

  const error = useMemo(() => {
    if (mutation.error) return mutation.error
    return current && current.status !== 'running' && current.status !== 'succeeded' ? new RunFailedError(current as RunRecord) : null
  }, [mutation.error, current])

  return {
    run: useCallback(
      (input?: JsonValue) => {
        setDismissed(null)
        mutate(input)
      },
      [mutate],
    ),
    runAsync: useCallback(
      (input?: JsonValue) => {
        setDismissed(null)
        return mutateAsync(input)
      },
      [mutateAsync],
    ),
    cancel: useCallback(async () => {
      if (runningId) await client.cancelRun(runningId)
    }, [client, runningId]),
    current,
    status: current?.status ?? 'idle',
    progress: current?.progress ?? null,
    isRunning: mutation.isPending || current?.status === 'running',
    output: mutation.data ?? (current?.status === 'succeeded' ? (current.output as Output) : undefined),
    error,
    reset: useCallback(() => {
      resetMutation()
      setDismissed(latest?.runId ?? null)
    }, [resetMutation, latest?.runId]),
  }
}

/**
 * The session's runs, newest first, as they change (status, progress): for a list of recent
 * runs. Fetched when the component mounts; `refresh()` fetches them again.
 *
 * @example
 * const { runs } = useRuns()
 * runs.map((run) => <li key={run.runId}>{run.step}: {run.status}</li>)
 */
export function useRuns(): { runs: readonly RunRecord[]; refresh: () => Promise<void> } {
  const client = useSessionClient()
  const runs = useSyncExternalStore(client.subscribeRuns, client.getRuns, client.getRuns)
  const refresh = useCallback(async () => {
    await client.refreshRuns()
  }, [client])
  useEffect(() => {
    refresh().catch(() => {})
  }, [refresh])
  return { runs, refresh }
}
