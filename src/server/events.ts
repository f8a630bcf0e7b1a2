import { runDeltaOf, type SessionBase, tagOf } from '../shared/delta.js'
import { KeyedListeners } from '../shared/listeners.js'
import { sessionAnswer } from './answers.js'
import type { Caller, SessionStore } from './stores/types.js'

const encoder = new TextEncoder()

/** How often an idle stream sends a comment, so proxies keep it open. */
const HEARTBEAT_MS = 15_000

/**
 * The change feed behind `GET {base}/{id}/events`. Changes are announced in process (every
 * applied patch or step of this handler) and, when the store is shared (PostgreSQL), by the
 * store's `watch()` for changes made through any server. A stream sends the session's snapshot
 * whenever its version passes the last one sent, so duplicates and reordering collapse, and each
 * run whose rev passed the last one it sent (runs are listed only after a run was announced).
 */
export function createChangeFeed(store: SessionStore) {
  const listeners = new KeyedListeners()
  const streams = new Set<() => void>()

  /**
   * A count per watched session of the announcements that may have changed its runs: a stream
   * lists the runs only when it moved, so a patch costs the feed one read, not two.
   */
  const runStamps = new Map<string, number>()
  const watched = (sessionId: string) => [...listeners.keys()].includes(sessionId)
  const announce = (sessionId: string) => listeners.notify([sessionId])
  /** A run of the session changed (started, progress, ended). */
  const announceRun = (sessionId: string) => {
    if (watched(sessionId)) runStamps.set(sessionId, (runStamps.get(sessionId) ?? 0) + 1)
    announce(sessionId)
  }
  // Another server's change may be a run's (the store's notice does not say): both are checked.
  // After the store lost its notices for a while (a database restart), any open stream's
  // session may have changed: each checks for a newer version and its runs.
  const unwatch = store.watch?.(
    (sessionId) => announceRun(sessionId),
    () => [...listeners.keys()].forEach(announceRun),
  )

  const listen = (sessionId: string, listener: () => void) => listeners.add(sessionId, listener)

  /**
   * An event stream of `sessionId`'s changes after `since`, each read as `caller` (the owner
   * check holds for every event: a session the caller may not reach sends nothing). From a tag
   * (`since` with `createdAt`), each change is a delta from the version sent before when the
   * store can make one, and runs sent before come as run deltas; from a plain version, snapshots.
   */
  function stream(sessionId: string, since: { version: number; createdAt?: string }, caller: Caller, signal: AbortSignal): Response {
    const deltas = since.createdAt !== undefined
    let lastSent: SessionBase = { version: since.version, createdAt: since.createdAt ?? '' }
    let queue: Promise<void> = Promise.resolve()
    let end = () => {}
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        const write = (text: string) => {
          try {
            controller.enqueue(encoder.encode(text))
          } catch {
            end()
          }
        }
        // The rev of each run sent (or known finished when the stream opened), and the run stamp listed at.
        let runRevs: Map<string, number> | undefined
        let listedAt = -1
        const sendNewer = async () => {
          const answer = await sessionAnswer(store, sessionId, caller, deltas ? lastSent : undefined).catch(() => null)
          // Newer: a delta with something in it, or a snapshot of a later version (or of a session made again under this id).
          const newer =
            answer &&
            (answer.delta
              ? !answer.current
              : answer.version > lastSent.version || (deltas && lastSent.version > 0 && answer.createdAt !== lastSent.createdAt))
          if (answer && newer) {
            lastSent = { version: answer.version, createdAt: answer.createdAt }
            const id = deltas ? tagOf(lastSent) : String(answer.version)
            write(`id: ${id}\nevent: ${answer.delta ? 'delta' : 'snapshot'}\ndata: ${answer.json}\n\n`)
          }
          const stamp = runStamps.get(sessionId) ?? 0
          if (!answer || stamp === listedAt) return
          listedAt = stamp
          // Runs: those that changed since the last event (on open: the running ones).
          const runs = (await store.listRuns(sessionId, { caller }).catch(() => null)) ?? []
          const opening = runRevs === undefined
          runRevs ??= new Map()
          for (const run of [...runs].reverse()) {
            const known = runRevs.get(run.runId)
            if (known !== undefined ? run.rev <= known : opening && run.status !== 'running') {
              runRevs.set(run.runId, run.rev)
              continue
            }
            runRevs.set(run.runId, run.rev)
            // A run sent before on a stream of deltas: only what changed since the rev sent.
            write(`event: run\ndata: ${JSON.stringify(deltas && known !== undefined ? runDeltaOf(run, known) : run)}\n\n`)
          }
        }
        const stopListening = listen(sessionId, () => {
          queue = queue.then(sendNewer)
        })
        const heartbeat = setInterval(() => write(': keep-alive\n\n'), HEARTBEAT_MS)
        ;(heartbeat as { unref?: () => void }).unref?.()
        end = () => {
          stopListening()
          if (!watched(sessionId)) runStamps.delete(sessionId)
          clearInterval(heartbeat)
          streams.delete(end)
          try {
            controller.close()
          } catch {
            // Already closed.
          }
        }
        streams.add(end)
        signal.addEventListener('abort', () => end(), { once: true })
        write(': connected\n\n')
        queue = queue.then(sendNewer) // catch up from `since`
      },
      cancel: () => end(),
    })
    return new Response(body, {
      headers: { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no' },
    })
  }

  return {
    announce,
    announceRun,
    listen,
    stream,
    /** Ends every open stream (before a graceful shutdown) and stops watching the store. */
    close: () => {
      for (const end of [...streams]) end()
      unwatch?.()
    },
  }
}
