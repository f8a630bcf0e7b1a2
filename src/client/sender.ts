import type { SessionSnapshot } from '../shared/protocol.js'
import { backoff } from './backoff.js'
import type { NumberedPatch } from './changes.js'
import { asSessionError, type SessionError } from './errors.js'
import type { SessionClientOptions } from './types.js'
import type { QueuedPatch } from './view.js'

export interface SenderOptions {
  post: (body: NumberedPatch, init: { keepalive: boolean; signal: AbortSignal }) => Promise<SessionSnapshot>
  retry: { baseMs: number; maxMs: number }
  onAuthError: SessionClientOptions['onAuthError']
  /** Writes the local copy: before a (non-keepalive) request leaves, so a reload resends the patch with the same seq. */
  persist: () => Promise<void>
  /** Whether `patch` is still to be sent (not superseded by the patch sent when the page hid). */
  isQueued: (patch: QueuedPatch) => boolean
  onConfirmed: (patch: QueuedPatch, snapshot: SessionSnapshot) => void
  /**
   * The server is at another schema version (409 `schema_mismatch`): true when this page must
   * be updated, and then the patch stays queued, and nothing is sent until the page is reloaded.
   */
  isOutdated: (failure: SessionError) => boolean
  /** The server refused `patch` for good (or the app did not fix a 401). */
  onRefused: (patch: QueuedPatch, failure: SessionError) => void
  /** A request started, or one failed (`failure`): the status may have changed. */
  onStatus: (failure?: SessionError) => void
  /** `patch` is sent now (for devtools). */
  onSend: (patch: QueuedPatch, keepalive: boolean) => void
  /** A send of `patch` failed: `retryAt` (ms since epoch) when it waits out a backoff, else null. For devtools. */
  onFailed: (patch: QueuedPatch, failure: SessionError, retryAt: number | null) => void
  /** Sends the next patch: the backoff is over or the app fixed a 401. */
  send: () => void
}

export interface Sender {
  /** Sends `patch`; `keepalive` for the request made as the page hides. */
  send(patch: QueuedPatch, keepalive: boolean): void
  /** A request is on its way. */
  isSending(): boolean
  /** A request, a backoff or the app's 401 handler is under way: nothing else is sent meanwhile. */
  isBusy(): boolean
  isAuthorizing(): boolean
  /** Gives up the requests in flight (back online: they may hang on a dead connection); their answers no longer count. */
  abandon(): void
  /** Ends the wait of a backoff without sending. */
  cancelRetry(): void
}

/**
 * The retry loop of the patch queue, in the manner of TanStack's `createRetryer`: owns the one
 * request in flight, the backoff, the one retry after a 401 and keepalive; what an answer means
 * for the session is the caller's (`onConfirmed`, `onRefused`).
 */
export function createSender(options: SenderOptions): Sender {
  /** One per patch request under way; aborted when it is given up (back online), and then forgotten. */
  const requests = new Set<AbortController>()
  const authRetried = new WeakSet<QueuedPatch>()
  let retryTimer: ReturnType<typeof setTimeout> | undefined
  let authorizing = false
  let attempt = 0

  const cancelRetry = () => {
    if (retryTimer !== undefined) clearTimeout(retryTimer)
    retryTimer = undefined
  }

  const refuse = (patch: QueuedPatch, failure: SessionError) => {
    attempt = 0
    options.onRefused(patch, failure)
  }

  function failed(patch: QueuedPatch, failure: SessionError): void {
    // Retried after a backoff when retryable and still queued (the branches below refuse or wait for the app otherwise).
    const retryIn = failure.retryable && options.isQueued(patch) ? backoff(attempt + 1, options.retry) : null
    options.onFailed(patch, failure, retryIn === null ? null : Date.now() + retryIn)
    if (!options.isQueued(patch)) {
      options.onStatus(failure)
      return
    }
    if (failure.status === 401 && options.onAuthError && !authRetried.has(patch)) {
      authRetried.add(patch)
      authorizing = true
      options.onStatus(failure)
      const settle = (retry: unknown) => {
        authorizing = false
        if (retry === true) options.send()
        else refuse(patch, failure)
      }
      void Promise.resolve()
        .then(() => options.onAuthError!(failure))
        .then(settle, () => settle(false))
      return
    }
    if (failure.code === 'schema_mismatch' && options.isOutdated(failure)) {
      attempt = 0
      options.onStatus(failure)
      return
    }
    if (!failure.retryable) {
      options.onStatus(failure)
      refuse(patch, failure)
      return
    }
    attempt++
    retryTimer = setTimeout(() => {
      retryTimer = undefined
      options.send()
    }, retryIn!)
    options.onStatus(failure)
  }

  return {
    send(patch, keepalive) {
      cancelRetry()
      const request = new AbortController()
      requests.add(request)
      options.onSend(patch, keepalive)
      options.onStatus()
      void (async () => {
        let snapshot: SessionSnapshot
        try {
          if (!keepalive) await options.persist()
          request.signal.throwIfAborted()
          snapshot = await options.post(patch.body, { keepalive, signal: request.signal })
        } catch (failure) {
          // Given up and already sent again (back online): neither its answer nor its failure counts.
          if (requests.delete(request)) failed(patch, asSessionError(failure))
          return
        }
        if (!requests.delete(request)) return
        attempt = 0
        options.onConfirmed(patch, snapshot)
      })()
    },
    isSending: () => requests.size > 0,
    isBusy: () => requests.size > 0 || retryTimer !== undefined || authorizing,
    isAuthorizing: () => authorizing,
    abandon() {
      for (const request of requests) request.abort()
      requests.clear()
    },
    cancelRetry,
  }
}
