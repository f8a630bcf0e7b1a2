import type { EventEmitter } from 'node:events'

// React 18 in development re-throws an error from rendering inside a fake DOM event, and jsdom
// reports it as "Error: Uncaught [...]" through its virtual console, which writes to the console
// Node had when the environment was made: straight to stderr, around test/setup.ts. Sent to the
// console the test sees instead, it is one more console.error: a test that expects the error
// silences it, any other test fails on it.
const virtualConsole = (globalThis as { jsdom?: { virtualConsole: EventEmitter } }).jsdom?.virtualConsole
if (virtualConsole) {
  virtualConsole.removeAllListeners('jsdomError')
  virtualConsole.on('jsdomError', (error: Error & { detail?: unknown }) => console.error(error.stack, error.detail))
}
