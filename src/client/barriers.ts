import { SessionError } from './errors.js'

interface Waiter {
  barrier: number
  resolve: () => void
  reject: (error: SessionError) => void
  timer: ReturnType<typeof setTimeout>
}

/**
 * Flush barriers. Each sent patch has a ticket (its place in the local send order); a flush
 * waits for the ticket that carries every change made before it.
 */
export class FlushBarriers {
  #waiters: Waiter[] = []

  get size(): number {
    return this.#waiters.length
  }

  /** Resolves once `barrier` is confirmed; rejects on a refusal or after `timeoutMs`. */
  wait(barrier: number, timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const waiter: Waiter = {
        barrier,
        resolve,
        reject,
        timer: setTimeout(
          () => this.#settle(waiter, new SessionError('flush_timeout', `Changes not confirmed within ${timeoutMs} ms; they stay queued`, undefined, true)),
          timeoutMs,
        ),
      }
      this.#waiters.push(waiter)
    })
  }

  /** Every ticket up to `ticket` is confirmed. */
  confirmUpTo(ticket: number): void {
    for (const waiter of this.#waiters.filter((w) => w.barrier <= ticket)) this.#settle(waiter)
  }

  /** `ticket` was refused: every flush that waited for it fails. */
  refuse(ticket: number, error: SessionError): void {
    for (const waiter of this.#waiters.filter((w) => w.barrier >= ticket)) this.#settle(waiter, error)
  }

  #settle(waiter: Waiter, failure?: SessionError): void {
    clearTimeout(waiter.timer)
    this.#waiters = this.#waiters.filter((w) => w !== waiter)
    if (failure) waiter.reject(failure)
    else waiter.resolve()
  }
}
