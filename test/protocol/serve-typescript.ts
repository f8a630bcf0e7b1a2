// The TypeScript server as the protocol tests run it: serve() + the handler over a memory store,
// with the conformance step; prints `workflow-session on <base url>`.
import { conformanceSteps, createSessionHandler, memoryStore, serve } from '../../src/server/index.js'

const running = await serve({
  handler: createSessionHandler({ store: memoryStore(), steps: conformanceSteps, onError: () => {} }),
  port: 0,
  shutdownSignals: ['SIGTERM'],
})
console.log(`workflow-session on ${running.url}/api/session`)
