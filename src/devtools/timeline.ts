import { html, nothing, svg, type SVGTemplateResult, type TemplateResult } from 'lit-html'
import { clock, duration, errorCode, errorLine } from './format.js'
import type { InspectorEvent } from './inspector.js'

/** The last `capacity` items, oldest dropped first. */
export class RingBuffer<T> {
  private readonly items: T[] = []
  /** Where the next item goes once full: the oldest one's place. */
  private next = 0

  constructor(readonly capacity: number) {}

  push(item: T): void {
    if (this.items.length < this.capacity) this.items.push(item)
    else this.items[this.next] = item
    this.next = (this.next + 1) % this.capacity
  }

  /** The items, oldest first. */
  toArray(): T[] {
    return this.items.length < this.capacity ? [...this.items] : [...this.items.slice(this.next), ...this.items.slice(0, this.next)]
  }
}

/** The sentence a screen reader hears for an event worth hearing (errors, confirmations, offline, online), or null. */
function spoken(event: InspectorEvent): { kind: string; text: string } | null {
  switch (event.type) {
    case 'failed':
      return { kind: 'failed', text: `Send failed: ${errorCode(event.error)}` }
    case 'refused':
      return { kind: 'refused', text: `Change refused: ${errorCode(event.error)}` }
    case 'confirmed':
      return { kind: 'confirmed', text: `Confirmed, now version ${event.version}` }
    case 'offline':
    case 'online':
      return { kind: 'network', text: event.type === 'offline' ? 'Offline' : 'Back online' }
    default:
      return null
  }
}

/**
 * What the timeline's live region says: at most one announcement per `intervalMs`; what comes in
 * between is told together at the end of it, one line per kind (the latest of each, with a count).
 * Writes and sends are never told: a keystroke is not news.
 */
export function createAnnouncer(onChange: () => void, intervalMs = 3000) {
  let text = ''
  let lastAt = -Infinity
  let timer: ReturnType<typeof setTimeout> | undefined
  const waiting = new Map<string, { text: string; count: number }>()

  const release = () => {
    timer = undefined
    lastAt = Date.now()
    text = [...waiting.values()].map((line) => (line.count > 1 ? `${line.text} (×${line.count})` : line.text)).join('. ')
    waiting.clear()
    onChange()
  }

  return {
    get text() {
      return text
    },
    note(event: InspectorEvent): void {
      const line = spoken(event)
      if (!line) return
      // Kept in the order first heard, with the latest sentence of its kind.
      const count = (waiting.get(line.kind)?.count ?? 0) + 1
      waiting.delete(line.kind)
      waiting.set(line.kind, { text: line.text, count })
      if (timer !== undefined) return
      const wait = lastAt + intervalMs - Date.now()
      if (wait <= 0) release()
      else timer = setTimeout(release, wait)
    },
    dispose(): void {
      clearTimeout(timer)
      timer = undefined
    },
  }
}

/** The strip's lanes, top to bottom: which events each shows, how, and what the legend calls them. */
type Lane = 'write' | 'send' | 'confirmed' | 'received' | 'error'

const LANES: ReadonlyArray<{ lane: Lane; label: string; legend: string }> = [
  { lane: 'write', label: 'write', legend: 'write here (tick)' },
  { lane: 'send', label: 'send', legend: 'patch sent (triangle)' },
  { lane: 'confirmed', label: 'ok', legend: 'confirmed (circle)' },
  { lane: 'received', label: 'server', legend: 'server change received (diamond)' },
  { lane: 'error', label: 'error', legend: 'failed, refused or made to fail (cross)' },
]

const laneOf = (event: InspectorEvent): Lane | null => {
  switch (event.type) {
    case 'write':
    case 'send':
    case 'confirmed':
    case 'received':
      return event.type
    case 'failed':
    case 'refused':
    case 'injected':
      return 'error'
    default:
      return null
  }
}

/** Each lane's mark, drawn around (0, 0). */
const shape = (lane: Lane): SVGTemplateResult => {
  switch (lane) {
    case 'write':
      return svg`<rect class="t-write" x="-0.75" y="-4" width="1.5" height="8"></rect>`
    case 'send':
      return svg`<path class="t-send" d="M0,-4 L4,3.5 L-4,3.5 Z"></path>`
    case 'confirmed':
      return svg`<circle class="t-confirmed" r="3.5"></circle>`
    case 'received':
      return svg`<path class="t-received" d="M0,-4.5 L4.5,0 L0,4.5 L-4.5,0 Z"></path>`
    case 'error':
      return svg`<path class="t-error" d="M-3.5,-3.5 L3.5,3.5 M3.5,-3.5 L-3.5,3.5"></path>`
  }
}

/** The span the strip shows. */
const WINDOW_MS = 60_000
const WIDTH = 600
const GUTTER = 44
const LANE_HEIGHT = 12
const AXIS = 12

/** The offline periods among `events` (`offline` to `online`; still offline: to `now`). */
function offlineBands(events: readonly InspectorEvent[], isOnline: boolean, now: number, from: number): Array<[number, number]> {
  const bands: Array<[number, number]> = []
  let since: number | null = null
  let seenAny = false
  for (const event of events) {
    if (event.type === 'offline') {
      since ??= event.at
      seenAny = true
    } else if (event.type === 'online') {
      // Back online with no `offline` heard: offline since before the first event kept.
      if (since !== null || !seenAny) bands.push([since ?? from, event.at])
      since = null
      seenAny = true
    }
  }
  if (!isOnline) bands.push([since ?? (seenAny ? now : from), now])
  return bands.filter(([start, end]) => end >= from && end > start)
}

/** The strip of the last minute: a lane per kind of event, offline periods shaded, with its legend. */
export function timelineStrip(events: readonly InspectorEvent[], isOnline: boolean, now: number, mountedAt: number): TemplateResult {
  const from = now - WINDOW_MS
  const x = (at: number) => GUTTER + ((Math.max(at, from) - from) / WINDOW_MS) * (WIDTH - GUTTER - 6)
  const y = (index: number) => 4 + index * LANE_HEIGHT + LANE_HEIGHT / 2
  const height = LANES.length * LANE_HEIGHT + AXIS + 4
  const recent = events.filter((event) => event.at >= from)
  const bands = offlineBands(events, isOnline, now, Math.max(from, mountedAt))
  const counts = new Map<Lane, number>()
  for (const event of recent) {
    const lane = laneOf(event)
    if (lane) counts.set(lane, (counts.get(lane) ?? 0) + 1)
  }
  const offlineMs = bands.reduce((total, [start, end]) => total + end - Math.max(start, from), 0)
  const summary =
    `Last minute: ${LANES.map(({ lane, label }) => `${counts.get(lane) ?? 0} ${label}`).join(', ')}` +
    (offlineMs > 0 ? `; offline for ${duration(offlineMs)}` : '')
  const watchedSince = mountedAt > from ? x(mountedAt) : null

  return html`
    <svg class="strip" viewBox="0 0 ${WIDTH} ${height}" role="img" aria-label=${summary}>
      ${bands.map(([start, end]) => svg`<rect class="band" x=${x(start)} y="0" width=${Math.max(1, x(end) - x(start))} height=${height - AXIS}></rect>`)}
      ${bands.map(([start, end]) =>
        // Named where there is room for the word (the legend names the shading anyway).
        x(end) - x(start) >= 40 ? svg`<text x=${x(start) + 2} y=${height - AXIS - 2}>offline</text>` : nothing,
      )}
      ${LANES.map(
        ({ label }, index) => svg`
          <line class="lane" x1=${GUTTER} x2=${WIDTH} y1=${y(index)} y2=${y(index)}></line>
          <text x="2" y=${y(index) + 3}>${label}</text>`,
      )}
      ${watchedSince === null ? nothing : svg`<line class="lane" x1=${watchedSince} x2=${watchedSince} y1="0" y2=${height - AXIS}></line>`}
      ${recent.map((event) => {
        const lane = laneOf(event)
        if (!lane) return nothing
        const index = LANES.findIndex((entry) => entry.lane === lane)
        return svg`<g transform="translate(${x(event.at)} ${y(index)})"><title>${clock(event.at)} ${event.type} ${detail(event)}</title>${shape(lane)}</g>`
      })}
      <text x=${GUTTER} y=${height - 2}>−60 s</text>
      <text x=${(GUTTER + WIDTH) / 2 - 12} y=${height - 2}>−30 s</text>
      <text x=${WIDTH - 24} y=${height - 2}>now</text>
    </svg>
    <div class="legend" aria-hidden="true">
      ${LANES.map(({ lane, legend }) => html`<span><svg viewBox="-5 -5 10 10">${shape(lane)}</svg>${legend}</span>`)}
      <span
        ><svg viewBox="0 0 10 10"><rect class="band" x="0.5" y="0.5" width="9" height="9"></rect></svg>offline (shaded)</span
      >
    </div>
  `
}

/** The last `count` events, newest first: time, type and a short detail. */
export function eventList(events: readonly InspectorEvent[], count = 50): TemplateResult {
  const last = events.slice(-count).reverse()
  if (last.length === 0) return html`<p class="empty">No events yet: they show here as they happen.</p>`
  return html`
    <table class="events">
      <caption class="sr-only">
        Last ${last.length} events, newest first
      </caption>
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Event</th>
          <th scope="col">Detail</th>
        </tr>
      </thead>
      <tbody>
        ${last.map(
          (event) =>
            html`<tr>
              <td class="mono">${clock(event.at)}</td>
              <td><span class="badge ${tone(event)}">${event.type}</span></td>
              <td class="mono">${detail(event)}</td>
            </tr>`,
        )}
      </tbody>
    </table>
  `
}

/** An event's badge colour (its name says the rest). */
function tone(event: InspectorEvent): string {
  switch (event.type) {
    case 'failed':
    case 'refused':
    case 'injected':
      return 'err'
    case 'confirmed':
      return 'ok'
    case 'send':
      return 'info'
    case 'received':
      return 'purple'
    case 'offline':
      return 'warn'
    case 'saved':
      return event.ok ? '' : 'err'
    default:
      return ''
  }
}

/** An event in a few words. */
function detail(event: InspectorEvent): string {
  switch (event.type) {
    case 'write':
      return event.key
    case 'send':
      return `#${event.seq} ${event.keys.join(', ')} (${event.bytes} B${event.keepalive ? ', keepalive' : ''})`
    case 'confirmed':
      return `#${event.seq} → v${event.version}`
    case 'failed':
      return `#${event.seq} ${errorLine(event.error)}${event.retryAt === null ? ' (no retry)' : ` (retry after ${duration(event.retryAt - event.at)})`}`
    case 'refused':
      return `#${event.seq} ${errorLine(event.error)}`
    case 'received':
      return `v${event.version}`
    case 'online':
    case 'offline':
      return ''
    case 'saved':
      return event.ok ? 'device copy written' : 'device copy write failed'
    case 'feed':
      return event.version === undefined ? (event.connected ? 'connected' : 'disconnected') : `v${event.version}`
    case 'injected':
      return `${event.status} ${event.url}`
    case 'faults':
      return event.remaining > 0 ? `the next ${event.remaining} requests fail with ${event.status}` : 'no more failures'
  }
}
