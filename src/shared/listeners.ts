/** Listeners by key (a variable name in the client, a session id in the server's change feed) plus listeners of every change. */
export class KeyedListeners {
  #byKey = new Map<string, Set<() => void>>()
  #all = new Set<() => void>()

  add(key: string | undefined, listener: () => void): () => void {
    if (key === undefined) {
      this.#all.add(listener)
      return () => void this.#all.delete(listener)
    }
    let set = this.#byKey.get(key)
    if (!set) this.#byKey.set(key, (set = new Set()))
    set.add(listener)
    return () => {
      set.delete(listener)
      if (set.size === 0 && this.#byKey.get(key) === set) this.#byKey.delete(key)
    }
  }

  /** The keys that have listeners now. */
  keys(): IterableIterator<string> {
    return this.#byKey.keys()
  }

  /** Tells the listeners of each changed key, then the listeners of every change once. */
  notify(changedKeys: readonly string[]): void {
    if (changedKeys.length === 0) return
    for (const key of changedKeys) this.#byKey.get(key)?.forEach(call)
    this.#all.forEach(call)
  }
}

export class Listeners<Args extends unknown[] = []> {
  #set = new Set<(...args: Args) => void>()
  add(listener: (...args: Args) => void): () => void {
    this.#set.add(listener)
    return () => void this.#set.delete(listener)
  }
  notify(...args: Args): void {
    for (const listener of this.#set) listener(...args)
  }
}

function call(listener: () => void): void {
  listener()
}
