import type { Client } from 'pg'
import type { ChangeListener } from './types.js'

interface Watcher {
  onChange: ChangeListener
  onReconnect?: () => void
}

/** Delay before the next attempt to listen again: 100 ms doubling to 2 s. */
const retryDelay = (attempt: number) => Math.min(2000, 100 * 2 ** attempt)

/**
 * LISTENs on `channel` over a connection of its own and hands each `{ id, version }` payload to
 * the watchers. When the connection ends (a database restart), it connects again with backoff
 * and, once listening, tells every watcher `onReconnect`: changes made meanwhile were not heard.
 */
export function watchChanges(newClient: () => Client, channel: string) {
  const watchers = new Set<Watcher>()
  let client: Client | undefined
  let timer: ReturnType<typeof setTimeout> | undefined
  let stopped = false
  let attempt = 0
  /** Whether a connection listened before: the next one may have missed changes. */
  let heardBefore = false

  const deliver = (payload: string | undefined) => {
    let change: { id?: unknown; version?: unknown }
    try {
      change = JSON.parse(payload ?? '') as typeof change
    } catch {
      return // Not ours.
    }
    if (typeof change.id !== 'string' || typeof change.version !== 'number') return
    for (const watcher of watchers) watcher.onChange(change.id, change.version)
  }

  function retry(): void {
    if (stopped || timer) return
    timer = setTimeout(() => {
      timer = undefined
      void connect()
    }, retryDelay(attempt++))
    ;(timer as { unref?: () => void }).unref?.() // a number, without unref, outside Node
  }

  async function connect(): Promise<void> {
    const next = newClient()
    let lost = false
    const onLost = () => {
      if (lost) return
      lost = true
      if (client === next) client = undefined
      void next.end().catch(() => {})
      retry()
    }
    // 'error' comes first when the database ends the connection; 'end' follows. Either means: again.
    next.on('error', onLost)
    next.on('end', onLost)
    next.on('notification', (message) => deliver(message.payload))
    try {
      await next.connect()
      await next.query(`LISTEN ${channel}`)
    } catch {
      onLost()
      return
    }
    // eslint-disable-next-line @typescript-eslint/no-unnecessary-condition -- stopped or lost while awaiting
    if (stopped || lost) return void next.end().catch(() => {})
    client = next
    // Changes made while nobody listened were not heard: after a lost connection, or a first
    // connection that took more than one attempt.
    const missedSome = heardBefore || attempt > 0
    attempt = 0
    heardBefore = true
    if (missedSome) for (const watcher of watchers) watcher.onReconnect?.()
  }

  void connect()
  return {
    /** Adds a watcher; returns its removal. */
    add(onChange: ChangeListener, onReconnect?: () => void): () => void {
      const watcher: Watcher = { onChange, ...(onReconnect && { onReconnect }) }
      watchers.add(watcher)
      return () => void watchers.delete(watcher)
    },
    stop(): void {
      stopped = true
      clearTimeout(timer)
      void client?.end().catch(() => {})
      client = undefined
    },
  }
}
