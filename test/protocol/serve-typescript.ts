// The TypeScript server as the protocol tests run it: serve() + the handler over a memory store,
// with the conformance step and the conformance schema; prints `workflow-session on <base url>`.
import { conformanceMigrations, conformanceSteps, createSessionHandler, memoryStore, serve } from '../../src/server/index.js'

const running = await serve({
  handler: createSessionHandler({ store: memoryStore({ migrations: conformanceMigrations }), steps: conformanceSteps, onError: () => {} }),
  port: 0,
  shutdownSignals: ['SIGTERM'],
})
console.log(`workflow-session on ${running.url}/api/session`)
