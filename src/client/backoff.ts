/** How long to wait before try number `attempt` (1, 2, …): capped exponential, with jitter so clients do not retry in step. */
export function backoff(attempt: number, retry: { baseMs: number; maxMs: number }): number {
  return Math.min(retry.maxMs, retry.baseMs * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2)
}
