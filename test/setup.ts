import { afterEach, beforeEach, type MockInstance, vi } from 'vitest'

// No console noise: a warning or error printed during a test (React's act() warnings included)
// fails that test.
let spies: MockInstance[] = []
beforeEach(() => {
  spies = (['error', 'warn'] as const).map((method) => vi.spyOn(console, method))
})
afterEach(() => {
  const printed = spies.flatMap((spy) => spy.mock.calls.map((args) => args.map(String).join(' ')))
  for (const spy of spies) spy.mockRestore()
  if (printed.length > 0) throw new Error(`The test printed to the console:\n${printed.join('\n')}`)
})
