import type { JsonValue, SessionSnapshot, Variables } from '../shared/protocol.js'
import type { Change, Changes, Outbox } from './changes.js'
import { KeyedListeners } from './listeners.js'
import { jsonEqual } from './values.js'

/** A patch with its number in the local send order (what flush barriers count in). */
export interface QueuedPatch {
  outbox: Outbox
  changes: Changes
  ticket: number
}

/**
 * What the hooks read: the server's snapshot with every unconfirmed change on top, newest layer
 * first — `pending`, then the queued patches (newest first), then `rejected`, then `base`.
 * Only keys whose visible value really changes are announced.
 */
export class LayeredView {
  base: SessionSnapshot | null = null
  /** Changes the server refused for good: still shown, never resent. */
  rejected: Changes = new Map()
  /** Patches assigned a seq, oldest first; the first is the one being sent. */
  queue: QueuedPatch[] = []
  /** Changes not yet in a patch. */
  pending: Changes = new Map()

  readonly listeners = new KeyedListeners()
  #values = new Map<string, JsonValue>()
  #snapshot: Readonly<Variables> | null = null

  get(key: string): JsonValue | undefined {
    return this.#values.get(key)
  }

  has(key: string): boolean {
    return this.#values.has(key)
  }

  keys(): IterableIterator<string> {
    return this.#values.keys()
  }

  snapshot(): Readonly<Variables> {
    return (this.#snapshot ??= Object.freeze(Object.fromEntries(this.#values)))
  }

  baseValue(key: string): JsonValue | undefined {
    return this.base && Object.hasOwn(this.base.variables, key) ? this.base.variables[key] : undefined
  }

  /** The value `key` has under the pending layer: what the server has or will have without it. */
  confirmedValue(key: string): JsonValue | undefined {
    const change = this.#queuedChange(key) ?? this.rejected.get(key)
    if (change) return 'deleted' in change ? undefined : change.value
    return this.baseValue(key)
  }

  resolve(key: string): JsonValue | undefined {
    const change = this.pending.get(key)
    if (change) return 'deleted' in change ? undefined : change.value
    return this.confirmedValue(key)
  }

  #queuedChange(key: string): Change | undefined {
    for (let i = this.queue.length - 1; i >= 0; i--) {
      const change = this.queue[i]!.changes.get(key)
      if (change) return change
    }
    return undefined
  }

  /** Recomputes `keys`; equal values keep their old identity, so an ack of our own write renders nothing. */
  refresh(keys: Iterable<string>): void {
    const changed: string[] = []
    for (const key of keys) {
      const next = this.resolve(key)
      const had = this.#values.has(key)
      if (next === undefined) {
        if (had) changed.push(key)
        this.#values.delete(key)
      } else if (!had || !jsonEqual(this.#values.get(key), next)) {
        this.#values.set(key, next)
        changed.push(key)
      }
    }
    if (changed.length === 0) return
    this.#snapshot = null
    this.listeners.notify(changed)
  }

  /** Every key any layer mentions. */
  allKeys(): Set<string> {
    const keys = new Set([...this.#values.keys(), ...Object.keys(this.base?.variables ?? {}), ...this.pending.keys(), ...this.rejected.keys()])
    for (const patch of this.queue) for (const key of patch.changes.keys()) keys.add(key)
    return keys
  }

  /**
   * Takes `snapshot` as the new base unless it is older than the one we have (`replace` takes it
   * anyway). Returns whether it was taken.
   */
  setBase(snapshot: SessionSnapshot, alsoRefresh: Iterable<string> = [], replace = false): boolean {
    const keys = new Set(alsoRefresh)
    const taken = replace || !this.base || snapshot.version >= this.base.version
    if (taken) {
      for (const key of Object.keys(this.base?.variables ?? {})) keys.add(key)
      for (const key of Object.keys(snapshot.variables)) keys.add(key)
      this.base = snapshot
    }
    this.refresh(keys)
    return taken
  }

  /** Names with unconfirmed changes, in no particular order. */
  unconfirmedKeys(): string[] {
    const keys = new Set<string>()
    for (const patch of this.queue) for (const key of patch.changes.keys()) keys.add(key)
    for (const key of this.pending.keys()) keys.add(key)
    return [...keys]
  }
}
