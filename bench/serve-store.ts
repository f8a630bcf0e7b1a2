// The server half of bench/server.ts, in a process of its own: serves the session handler over
// the store named by argv[2] on a free loopback port and prints its URL.
import { createSessionHandler, openStore, serve } from '../src/server/index.js'

const store = await openStore(process.argv[2]!)
const running = await serve({ handler: createSessionHandler({ store }), port: 0, shutdownSignals: ['SIGTERM'], onClose: () => store.close() })
console.log(running.url)
