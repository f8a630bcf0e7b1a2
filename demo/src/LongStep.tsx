import { useRun, useVariable } from 'workflow-session'

interface Progress {
  done: number
  of: number
}

/**
 * A step that takes 20 seconds, as real ones do: a progress bar while it runs, Cancel, and the
 * result when it ends. Reload or open a second tab mid-run: the same run shows, and goes on.
 */
export function LongStep() {
  const { run, cancel, isRunning, status, progress, output, error } = useRun<{ message: string }>('report')
  const [report] = useVariable<{ message: string } | null>('report', null)
  const { done = 0, of = 10 } = (progress as Progress | null) ?? {}
  return (
    <div>
      <button type="button" onClick={() => run()} disabled={isRunning}>
        {isRunning ? 'Making the report…' : 'Make a report'}
      </button>
      {isRunning && (
        <>
          <progress aria-label="Report progress" value={done} max={of} />
          <button type="button" onClick={() => void cancel()}>
            Cancel
          </button>
        </>
      )}
      {status === 'cancelled' && <p>The report was cancelled.</p>}
      {output ? <p role="note">{output.message}</p> : report && !isRunning && <p role="note">{report.message}</p>}
      {error && status !== 'cancelled' && <p role="alert">Could not make the report: {error.message}</p>}
    </div>
  )
}
