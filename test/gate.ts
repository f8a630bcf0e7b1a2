/** A promise that stays pending until `release()`: holds a mocked request, a step, a fetch. */
export function newGate(): { gate: Promise<void>; release: () => void } {
  let release!: () => void
  const gate = new Promise<void>((resolve) => (release = resolve))
  return { gate, release }
}
