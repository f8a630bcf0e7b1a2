// The floor: what bare Node does for a patch. A `node:http` endpoint that reads the JSON body,
// merges its variables into a Map per session and answers the snapshot — no validation, no
// seq, no store. Prints its URL like bench/serve-store.ts.
import { createServer } from 'node:http'

interface Snapshot {
  sessionId: string
  variables: Record<string, unknown>
  version: number
  updatedAt: string
}
const sessions = new Map<string, Snapshot>()

const server = createServer((req, res) => {
  const sessionId = req.url!.slice('/api/session/'.length)
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk: string) => (body += chunk))
  req.on('end', () => {
    let snapshot = sessions.get(sessionId)
    if (!snapshot) sessions.set(sessionId, (snapshot = { sessionId, variables: {}, version: 0, updatedAt: '' }))
    if (req.method === 'POST') {
      Object.assign(snapshot.variables, (JSON.parse(body) as { variables: Record<string, unknown> }).variables)
      snapshot.version++
      snapshot.updatedAt = new Date().toISOString()
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify(snapshot))
  })
})
server.listen(0, '127.0.0.1', () => console.log(`http://127.0.0.1:${(server.address() as { port: number }).port}`))
process.once('SIGTERM', () => server.close(() => process.exit(0)))
