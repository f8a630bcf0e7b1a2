import { act, cleanup } from '@testing-library/react'
import { afterEach, beforeEach, vi } from 'vitest'

/**
 * Fake timers (and Date) in every test of the file that calls it, and after each test: the page
 * unmounted, its pending timers run, real timers back. Returns `advance(ms)`, which lets timers
 * and promises run inside act() so React applies the updates.
 */
export function fakeTimePerTest(): (ms: number) => Promise<void> {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'Date'] })
  })
  afterEach(async () => {
    cleanup()
    await vi.runOnlyPendingTimersAsync()
    vi.useRealTimers()
  })
  return async (ms) => {
    await act(async () => {
      await vi.advanceTimersByTimeAsync(ms)
    })
  }
}
