import { KeyedListeners } from '../shared/listeners.js'
import type { JsonValue, SessionSnapshot, Variables } from '../shared/protocol.js'
import type { Change, Changes, NumberedPatch } from './changes.js'
import { jsonEqual } from './values.js'

/** A patch with its number in the local send order (what flush barriers count in). */
export interface QueuedPatch {
  body: NumberedPatch
  changes: Changes
  ticket: number
}

/**
 * What the hooks read: the server's snapshot with every unconfirmed change on top, newest layer
 * first — `pending`, then the queued patches (newest first), then `rejected`, then `base`.
 * Only keys whose visible value really changes are announced.
 *
 * The view owns its layers: they change only through its operations (write, seal, ack, refuse,
 * rebase, restore), and after each one the listener given to `onLayersChange` runs with
 * `outboxChanged`, so saving the local copy and the sync status follow every change without the
 * caller remembering to.
 */
export class LayeredView {
  #base: SessionSnapshot | null = null
  /** Changes the server refused for good: still shown, never resent. */
  #rejected: Changes = new Map()
  /** Patches assigned a seq, oldest first; the first is the one being sent. */
  #queue: QueuedPatch[] = []
  /** Changes not yet in a patch. */
  #pending: Changes = new Map()
  /** Names with unconfirmed changes; dropped only when that set may have changed, not on every write. */
  #unconfirmed: readonly string[] | null = null
  #values = new Map<string, JsonValue>()
  #snapshot: Readonly<Variables> | null = null
  #onChange: (outboxChanged: boolean) => void = () => {}

  readonly listeners = new KeyedListeners()

  /** Runs `listener(outboxChanged)` after every change of a layer (one listener: the client's, set once its parts exist). */
  onLayersChange(listener: (outboxChanged: boolean) => void): void {
    this.#onChange = listener
  }

  get base(): SessionSnapshot | null {
    return this.#base
  }

  get queue(): readonly QueuedPatch[] {
    return this.#queue
  }

  get pending(): ReadonlyMap<string, Change> {
    return this.#pending
  }

  /** Whether `key` shows a change the server refused (and nothing newer is written over it). */
  isRefused(key: string): boolean {
    return this.#rejected.has(key) && !this.#pending.has(key) && !this.#queuedChange(key)
  }

  get(key: string): JsonValue | undefined {
    return this.#values.get(key)
  }

  has(key: string): boolean {
    return this.#values.has(key)
  }

  snapshot(): Readonly<Variables> {
    return (this.#snapshot ??= Object.freeze(Object.fromEntries(this.#values)))
  }

  /** Names with unconfirmed changes, in no particular order (the same array until that set changes). */
  unconfirmedKeys(): readonly string[] {
    return (this.#unconfirmed ??= [...new Set([...this.#queue.flatMap((patch) => [...patch.changes.keys()]), ...this.#pending.keys()])])
  }

  /** Every unconfirmed change in one map, the newest of each key: what the queue and the pending layer would send together. */
  unconfirmedChanges(): Changes {
    return new Map([...this.#queue.flatMap((queued) => [...queued.changes]), ...this.#pending])
  }

  /** A local change; one back to what the server has (or is being sent) is no change at all. */
  write(key: string, change: Change): void {
    const queued = this.#queuedChange(key)
    const confirmed = this.#confirmedValue(key, queued)
    const same = 'deleted' in change ? confirmed === undefined : jsonEqual(confirmed, change.value)
    // The key joins or leaves the unconfirmed ones only when it was pending and is no more, or the reverse.
    if (!queued && this.#pending.has(key) === same) this.#unconfirmed = null
    if (same) this.#pending.delete(key)
    else this.#pending.set(key, change)
    this.#refresh([key])
    this.#onChange(true)
  }

  /**
   * Turns the pending changes into a patch at the end of the queue. With `carryQueue`, the patch
   * also carries every queued change and replaces the whole queue (the send when the page hides).
   */
  seal(bodyOf: (changes: Changes) => NumberedPatch, ticket: number, carryQueue = false): QueuedPatch {
    const changes: Changes = carryQueue ? this.unconfirmedChanges() : this.#pending
    const patch = { body: bodyOf(changes), changes, ticket }
    this.#pending = new Map()
    if (carryQueue) this.#queue = [patch]
    else this.#queue.push(patch)
    this.#onChange(true)
    return patch
  }

  /** The server confirmed `patch` with `snapshot`; returns whether the snapshot became the base. */
  ack(patch: QueuedPatch, snapshot: SessionSnapshot): boolean {
    this.#dequeue(patch)
    for (const key of patch.changes.keys()) this.#rejected.delete(key)
    const taken = this.#setBase(snapshot, patch.changes.keys())
    this.#onChange(true)
    return taken
  }

  /** The server refused `patch` for good: its changes stay visible, are not resent, and do not block later ones. */
  refuse(patch: QueuedPatch): void {
    this.#dequeue(patch)
    for (const [key, change] of patch.changes) this.#rejected.set(key, change)
    this.#refresh(patch.changes.keys())
    this.#onChange(true)
  }

  /**
   * Takes `snapshot` as the new base unless it is older than the one we have (`replace` takes it
   * anyway). Returns whether it was taken.
   */
  rebase(snapshot: SessionSnapshot, replace = false): boolean {
    const taken = this.#setBase(snapshot, [], replace)
    if (taken) this.#onChange(false)
    return taken
  }

  /** Applies what the local copy held: a base if newer, and closed pages' patches, which go out before this page's. */
  restore(base: SessionSnapshot | null, patches: QueuedPatch[]): void {
    if (base && (!this.#base || base.version > this.#base.version)) this.#base = base
    this.#queue.unshift(...patches)
    this.#unconfirmed = null
    this.#refresh(this.#allKeys())
    this.#onChange(false)
  }

  #dequeue(patch: QueuedPatch): void {
    this.#queue = this.#queue.filter((queued) => queued !== patch)
    this.#unconfirmed = null
  }

  #baseValue(key: string): JsonValue | undefined {
    return this.#base && Object.hasOwn(this.#base.variables, key) ? this.#base.variables[key] : undefined
  }

  /** The value `key` has under the pending layer: what the server has or will have without it. */
  #confirmedValue(key: string, queued = this.#queuedChange(key)): JsonValue | undefined {
    const change = queued ?? this.#rejected.get(key)
    if (change) return 'deleted' in change ? undefined : change.value
    return this.#baseValue(key)
  }

  #queuedChange(key: string): Change | undefined {
    let change: Change | undefined
    for (let i = this.#queue.length - 1; i >= 0 && !change; i--) change = this.#queue[i]!.changes.get(key)
    return change
  }

  #resolve(key: string): JsonValue | undefined {
    const change = this.#pending.get(key)
    if (change) return 'deleted' in change ? undefined : change.value
    return this.#confirmedValue(key)
  }

  /** Recomputes `keys`; equal values keep their old identity, so an ack of our own write renders nothing. */
  #refresh(keys: Iterable<string>): void {
    const changed: string[] = []
    for (const key of keys) {
      const next = this.#resolve(key)
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
  #allKeys(): Set<string> {
    const keys = new Set([
      ...this.#values.keys(),
      ...Object.keys(this.#base?.variables ?? {}),
      ...this.#pending.keys(),
      ...this.#rejected.keys(),
    ])
    for (const patch of this.#queue) for (const key of patch.changes.keys()) keys.add(key)
    return keys
  }

  #setBase(snapshot: SessionSnapshot, alsoRefresh: Iterable<string>, replace = false): boolean {
    const keys = new Set(alsoRefresh)
    const taken = replace || !this.#base || snapshot.version >= this.#base.version
    if (taken) {
      for (const key of Object.keys(this.#base?.variables ?? {})) keys.add(key)
      for (const key of Object.keys(snapshot.variables)) keys.add(key)
      this.#base = snapshot
    }
    this.#refresh(keys)
    return taken
  }
}
