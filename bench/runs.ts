// Runs against the synchronous run of before, on one server process over loopback (memory
// store, the protocol's conformance step): the latency of a no-op step from the call to its
// output, the requests a run takes, and what a 60 s run with progress every 100 ms costs the
// change feed. `npm run bench` prints it; `tsx bench/runs.ts` alone too.
import { createSessionClient, memoryLocalCopy } from '../src/client/index.js'
import { startServerProcess } from './server.js'

interface RunRow {
  label: string
  p50: number
  p99: number
  requests: number
}

export interface RunsResult {
  rows: RunRow[]
  /** A 60 s run that reports progress every 100 ms, as the change feed carries it. */
  /** `bytes`: whole records (a stream without Session-Base); `deltaBytes`: the same run as run deltas. */
  feed: { progressCalls: number; runEvents: number; bytes: number; deltaBytes: number; bytesIfUncoalesced: number }
  /** The requests `client.run()` made for a 2 s step (a start, then long polls). */
  requestsForTwoSeconds: number
}

const percentile = (values: number[], p: number) =>
  [...values].sort((a, b) => a - b)[Math.min(values.length - 1, Math.floor(p * values.length))]!

export async function measureRuns({ iterations = 200, longRunMs = 60_000 } = {}): Promise<RunsResult> {
  const server = await startServerProcess('memory:')
  try {
    const endpoint = `${server.url}/api/session`
    let requests = 0
    const counting: typeof fetch = (input, init) => {
      requests++
      return fetch(input, init)
    }
    const client = createSessionClient({ endpoint, sessionId: 'bench-runs-1', storage: memoryLocalCopy(), locks: null, fetch: counting })
    await client.start()
    client.set('kept', 1)
    await client.flush()

    const sync: number[] = []
    const runs: number[] = []
    let syncRequests = 0
    let runRequests = 0
    for (let i = 0; i < iterations + 20; i++) {
      // Taking turns, so both see the same machine; the first 20 of each warm up and are not counted.
      // The synchronous run as client.run() made it before: the flush barrier, then one request.
      let started = performance.now()
      let before = requests
      await client.flush()
      const answer = await counting(`${endpoint}/bench-runs-1/run/conformance_echo`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input: i }),
      })
      await answer.json()
      if (i >= 20) sync.push(performance.now() - started)
      syncRequests = requests - before
      started = performance.now()
      before = requests
      await client.run('conformance_echo', i)
      if (i >= 20) runs.push(performance.now() - started)
      runRequests = requests - before
    }

    // A step of 2 s: how many requests the wait takes (a start, then long polls of 25 s at most).
    const at = requests
    await client.run('conformance_echo', { sleepMs: 2000 })
    const requestsForTwoSeconds = requests - at

    // The change feed while a 60 s run reports progress every 100 ms: a stream that reads whole
    // records (no Session-Base, as before deltas) and one that reads run deltas, side by side.
    const controller = new AbortController()
    const open = async (headers: Record<string, string>) => {
      const stream = await fetch(`${endpoint}/bench-runs-1/events`, { headers, signal: controller.signal })
      const reader = stream.body!.pipeThrough(new TextDecoderStream()).getReader()
      const seen = { text: '', startAt: 0 }
      const reading = (async () => {
        for (;;) {
          const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
          if (done) return
          seen.text += value ?? ''
        }
      })()
      return { seen, reading }
    }
    const streams = [await open({}), await open({ 'session-base': '0' })]
    await new Promise((resolve) => setTimeout(resolve, 200))
    for (const { seen } of streams) seen.startAt = seen.text.length
    await client.run('conformance_echo', { sleepMs: longRunMs, note: 'an input the step is given: '.repeat(8) })
    await new Promise((resolve) => setTimeout(resolve, 300))
    controller.abort()
    await Promise.all(streams.map(({ reading }) => reading))
    const runEvents = ({ seen }: (typeof streams)[number]) =>
      seen.text
        .slice(seen.startAt)
        .split('\n\n')
        .filter((event) => event.startsWith('event: run'))
    const bytesOf = (events: string[]) => new TextEncoder().encode(events.map((event) => `${event}\n\n`).join('')).byteLength
    const events = runEvents(streams[0]!)
    const bytes = bytesOf(events)
    const deltaBytes = bytesOf(runEvents(streams[1]!))
    const progressCalls = Math.round(longRunMs / 100)
    await client.stop()
    return {
      rows: [
        {
          label: 'synchronous run (POST …/run/{step}, before)',
          p50: percentile(sync, 0.5),
          p99: percentile(sync, 0.99),
          requests: syncRequests,
        },
        {
          label: 'run as a record (client.run: POST …/runs?waitMs)',
          p50: percentile(runs, 0.5),
          p99: percentile(runs, 0.99),
          requests: runRequests,
        },
      ],
      feed: {
        progressCalls,
        runEvents: events.length,
        bytes,
        deltaBytes,
        bytesIfUncoalesced: Math.round((bytes / events.length) * progressCalls),
      },
      requestsForTwoSeconds,
    }
  } finally {
    await server.close()
  }
}

export function runsTable(result: RunsResult): string {
  const [sync, run] = result.rows as [RunRow, RunRow]
  const { feed } = result
  return `## Runs: a no-op step, and what a long run costs

One server process on loopback (memory store), the protocol's conformance step; the two ways
take turns, 200 each after 20 to warm up. Latency is from the call to the output in hand.

| way | p50 ms | p99 ms | requests per run | p50 vs the synchronous run |
|---|---|---|---|---|
| ${sync.label} | ${sync.p50.toFixed(2)} | ${sync.p99.toFixed(2)} | ${sync.requests} | 1× (the floor) |
| ${run.label} | ${run.p50.toFixed(2)} | ${run.p99.toFixed(2)} | ${run.requests} | ${(run.p50 / sync.p50).toFixed(2)}× |

A step of 2 s took ${result.requestsForTwoSeconds} requests from \`client.run()\` (the start, which answers at the
first progress value, then long polls). A 60 s run that calls \`progress()\` every 100 ms
(${feed.progressCalls} calls) sent ${feed.runEvents} \`event: run\` messages on the change feed: ${(feed.bytes / 1024).toFixed(1)} KiB in all
as whole records (a stream without \`Session-Base\`), ${(feed.deltaBytes / 1024).toFixed(1)} KiB as run deltas (${(feed.bytes / feed.deltaBytes).toFixed(1)}× less);
sent uncoalesced, the whole records would be about ${(feed.bytesIfUncoalesced / 1024).toFixed(1)} KiB
(${(feed.bytesIfUncoalesced / feed.bytes).toFixed(1)}× more).
`
}

if (import.meta.url === `file://${process.argv[1]}`)
  console.log(runsTable(await measureRuns({ longRunMs: Number(process.env.RUNS_LONG_MS ?? 60_000) })))
