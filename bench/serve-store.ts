// The server half of bench/server.ts, in a process of its own: serves the session handler over
// the store named by argv[2] on a free loopback port and prints its URL. It registers the
// protocol's conformance step, for the runs that the tests and the bench start.
// With WS_BENCH_DIST=1 (npm run bench) it serves the built package, as production runs it;
// tests run the sources.
const { conformanceSteps, createSessionHandler, openStore, serve } = (await import(
  process.env.WS_BENCH_DIST ? '../dist/server/index.js' : '../src/server/index.js'
)) as typeof import('../src/server/index.js')

const store = await openStore(process.argv[2]!)
const running = await serve({
  handler: createSessionHandler({ store, steps: conformanceSteps }),
  port: 0,
  shutdownSignals: ['SIGTERM'],
  onClose: () => store.close(),
})
console.log(running.url)
