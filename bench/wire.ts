// Bytes on the wire for one change, against session size: what a one-key patch sends up, what
// its answer, a change-feed event and a refetch bring down, for a client that reads whole
// snapshots (no Session-Base: every client before deltas) and for one that reads deltas, beside
// the physical limit: the size of the change itself. Bodies (and a refetch with its headers),
// over real HTTP to one server process (memory store).
import { request } from 'node:http'
import { tagOf } from '../src/shared/delta.js'
import type { SessionSnapshot } from '../src/shared/protocol.js'
import { startServerProcess } from './server.js'

export interface WireRow {
  variables: number
  /** The changed variable as JSON (`"v1":"changed 1"`): the least any answer can carry. */
  change: number
  /** A delta with nothing in it (its head): what every delta carries besides the change. */
  fixed: number
  up: number
  answer: { whole: number; delta: number }
  event: { whole: number; delta: number }
  refetch: { whole: number; delta: number; status: number }
  /** The same refetches as they come down the connection: status line, headers and body. */
  refetchOnTheWire: { whole: number; delta: number }
}

/** Every byte of the answer to a GET of `url` (status line, headers, body), on a connection of its own. */
function bytesDown(url: string, headers: Record<string, string> = {}): Promise<number> {
  return new Promise((resolve, reject) => {
    const call = request(url, { headers, agent: false }, (response) => {
      response.resume()
      response.on('end', () => {
        const socket = response.socket
        socket.once('close', () => resolve(socket.bytesRead))
        socket.destroy()
      })
    })
    call.on('error', reject)
    call.end()
  })
}

const encoder = new TextEncoder()
const bytes = (text: string) => encoder.encode(text).byteLength

export async function measureWire(sizes = [10, 1000, 10_000]): Promise<WireRow[]> {
  const server = await startServerProcess('memory:')
  try {
    const rows: WireRow[] = []
    for (const variables of sizes) {
      const url = `${server.url}/api/session/bench-wire-${variables}`
      const post = async (body: unknown, headers: Record<string, string> = {}) => {
        const text = JSON.stringify(body)
        const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: text })
        return { up: bytes(text), down: await response.text() }
      }
      for (let start = 0; start < variables; start += 1000)
        await post({
          variables: Object.fromEntries(
            Array.from({ length: Math.min(1000, variables - start) }, (_, i) => [`v${start + i}`, `value ${start + i}`]),
          ),
        })
      const held = (await (await fetch(url)).json()) as SessionSnapshot
      // Two streams: one that reads snapshots (from a version), one that reads deltas (from a tag).
      const controller = new AbortController()
      const listen = async (headers: Record<string, string>) => {
        const response = await fetch(`${url}/events`, { headers, signal: controller.signal })
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader()
        const seen = { text: '' }
        void (async () => {
          for (;;) {
            const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }))
            if (done) return
            seen.text += value ?? ''
          }
        })()
        return seen
      }
      const wholeStream = await listen({ 'last-event-id': String(held.version) })
      const deltaStream = await listen({ 'session-base': tagOf(held) })
      await new Promise((resolve) => setTimeout(resolve, 100))

      // The same one-key change, sent once without a base and once with the base the client holds.
      const change = { v1: `changed 1 of ${variables}` }
      const whole = await post({ variables: change, clientId: 'wire', seq: 1 })
      const afterWhole = JSON.parse(whole.down) as SessionSnapshot
      const delta = await post(
        { variables: { v1: `changed 2 of ${variables}` }, clientId: 'wire', seq: 2 },
        { 'session-base': tagOf(afterWhole) },
      )
      // The fixed part of a delta (its head): the answer to a replay from the current version, which changes nothing.
      const afterDelta = (await (await fetch(url)).json()) as SessionSnapshot
      const empty = await post(
        { variables: { v1: `changed 2 of ${variables}` }, clientId: 'wire', seq: 2 },
        { 'session-base': tagOf(afterDelta) },
      )
      await new Promise((resolve) => setTimeout(resolve, 200))
      controller.abort()
      const firstEvent = (text: string) => text.split('\n\n').find((event) => event.includes('\ndata: ')) ?? ''
      const dataOf = (event: string) => event.slice(event.indexOf('\ndata: ') + 7)

      // A refetch (focus, reconnect) with nothing new.
      const current = (await (await fetch(url)).json()) as SessionSnapshot
      const refetchWhole = await (await fetch(url)).text()
      const refetchDelta = await fetch(url, { headers: { 'session-base': tagOf(current) } })
      rows.push({
        variables,
        change: bytes(JSON.stringify(change).slice(1, -1)),
        fixed: bytes(empty.down),
        up: whole.up,
        answer: { whole: bytes(whole.down), delta: bytes(delta.down) },
        event: { whole: bytes(dataOf(firstEvent(wholeStream.text))), delta: bytes(dataOf(firstEvent(deltaStream.text))) },
        refetch: { whole: bytes(refetchWhole), delta: bytes(await refetchDelta.text()), status: refetchDelta.status },
        refetchOnTheWire: { whole: await bytesDown(url), delta: await bytesDown(url, { 'session-base': tagOf(current) }) },
      })
    }
    return rows
  } finally {
    await server.close()
  }
}

export function wireTable(rows: WireRow[]): string {
  // A delta over the floor: what it carries besides its fixed head, against the change's own size.
  const ratio = (row: WireRow, value: number) => `${((value - row.fixed) / row.change).toFixed(2)}× + head`
  return `## Wire: bytes for one one-key change, against session size

One server process (memory store) on loopback; bodies in bytes, HTTP headers aside. "Whole" is a
client that states no base (every client before deltas, and \`deltas: false\`): each answer is
the session. "Delta" states the version it holds in \`Session-Base\`. The floor is the change
itself (\`"v1":"changed …"\`); a delta carries it and a fixed head (the session id, versions,
times: the size of an empty delta, in its own column). The ratio is a delta without its head
over the change (goal: within 2×). The last column is the refetch as it comes down the
connection: status line and headers included.

| variables | the change (floor) | a delta's head | up: the patch | patch answer, whole → delta | feed event, whole → delta | refetch with nothing new, whole → delta | the refetch with its headers, whole → delta |
|---|---|---|---|---|---|---|---|
${rows
  .map(
    (row) =>
      `| ${row.variables} | ${row.change} | ${row.fixed} | ${row.up} | ${row.answer.whole} → ${row.answer.delta} (${ratio(row, row.answer.delta)}) | ${row.event.whole} → ${row.event.delta} (${ratio(row, row.event.delta)}) | ${row.refetch.whole} → ${row.refetch.delta} (${row.refetch.status}) | ${row.refetchOnTheWire.whole} → ${row.refetchOnTheWire.delta} |`,
  )
  .join('\n')}
`
}

if (import.meta.url === `file://${process.argv[1]}`) console.log(wireTable(await measureWire()))
