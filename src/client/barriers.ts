import { SessionError } from './errors.js'

interface Waiter {
  outstanding: Set<number>
  resolve: () => void
  reject: (error: SessionError) => void
  timer: ReturnType<typeof setTimeout>
}

/**
 * Flush barriers. Every patch has a ticket; a flush waits until each ticket it was given (the
 * patches carrying the changes made before it) is confirmed, and fails if one is refused.
 */
export class FlushBarriers {
  #waiters: Waiter[] = []

  get size(): number {
    return this.#waiters.length
  }

  /** Resolves once every ticket is confirmed (at once for none); rejects on a refusal or after `timeoutMs`. */
  wait(tickets: Iterable<number>, timeoutMs: number): Promise<void> {
    const outstanding = new Set(tickets)
    if (outstanding.size === 0) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        outstanding,
        resolve,
        reject,
        timer: setTimeout(
          () =>
            this.#settle(
              waiter,
              new SessionError('flush_timeout', `Changes not confirmed within ${timeoutMs} ms; they stay queued`, undefined, true),
            ),
          timeoutMs,
        ),
      }
      this.#waiters.push(waiter)
    })
  }

  /** The server has what `ticket` carried (or it turned out to carry nothing). */
  confirm(ticket: number): void {
    for (const waiter of [...this.#waiters]) {
      waiter.outstanding.delete(ticket)
      if (waiter.outstanding.size === 0) this.#settle(waiter)
    }
  }

  /** `ticket` was refused: every flush that waited for it fails. */
  refuse(ticket: number, error: SessionError): void {
    for (const waiter of this.#waiters.filter((w) => w.outstanding.has(ticket))) this.#settle(waiter, error)
  }

  /** What `ticket` carried now travels in `by` (a patch sent when the page hid). */
  replace(ticket: number, by: number): void {
    for (const waiter of this.#waiters) {
      if (waiter.outstanding.delete(ticket)) waiter.outstanding.add(by)
    }
  }

  #settle(waiter: Waiter, failure?: SessionError): void {
    clearTimeout(waiter.timer)
    this.#waiters = this.#waiters.filter((w) => w !== waiter)
    if (failure) waiter.reject(failure)
    else waiter.resolve()
  }
}
