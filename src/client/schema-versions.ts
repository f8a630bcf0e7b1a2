import { type Migrations, SET_ASIDE_KEY } from '../shared/migrations.js'
import type { SessionSnapshot } from '../shared/protocol.js'
import { fromPatchBody } from './changes.js'
import type { QueuedPatch } from './view.js'

/**
 * This page's schema version (docs/protocol.md, "Schema versions"): what the local copy holds in
 * an older one is migrated with the app's migrations as it is read, before it shows or is sent —
 * the base, and the patches queued by this page or a closed one (across a function step, by
 * migrating the base with and without the patch). The migrating is the declaration's own: a page
 * that declares none carries none of it.
 *
 * @example
 * const schema = clientSchema(migrations)
 * view.restore(schema.base(base), patches.map((patch) => schema.patch(patch, base)))
 */
export function clientSchema(migrations: Migrations | undefined) {
  const version = migrations?.version ?? 1
  /** Bases this page migrated itself: the server may hold them otherwise (its own migration), so they are not stated as held. */
  const migratedHere = new WeakSet<SessionSnapshot>()
  let setAside: readonly string[] = NONE
  return {
    version,
    /** What a request carries: nothing at version 1 (absent means 1). */
    field: version === 1 ? {} : { schemaVersion: version },
    /** The base in this page's version: an older one migrated; a newer one as it is (the page is then out of date). */
    base: (snapshot: SessionSnapshot | null): SessionSnapshot | null => {
      const migrated = snapshot && migrations ? migrations.migrateSnapshot(snapshot) : snapshot
      if (migrated && migrated !== snapshot) migratedHere.add(migrated)
      return migrated
    },
    /** The base to state to the server (`Session-Base`): none for one migrated here, so that the next answer is the server's whole snapshot. */
    held: (snapshot: SessionSnapshot | null): SessionSnapshot | null => (snapshot && migratedHere.has(snapshot) ? null : snapshot),
    /** The names a migration set aside in `snapshot` (its `ws:setAside`); the same array while they do not change. */
    setAside: (snapshot: SessionSnapshot | null): readonly string[] => {
      const aside = snapshot?.variables[SET_ASIDE_KEY]
      const names = aside && typeof aside === 'object' && !Array.isArray(aside) ? Object.keys(aside) : NONE
      if (names.length !== setAside.length || names.some((name, index) => name !== setAside[index])) setAside = names
      return setAside
    },
    /** A queued patch in this page's version (`base`: the snapshot the device kept, as it was written). */
    patch: (queued: QueuedPatch, base: SessionSnapshot | null): QueuedPatch => {
      const body = migrations ? migrations.migrateBody(queued.body, base) : queued.body
      return body === queued.body ? queued : { ...queued, body, changes: fromPatchBody(body) }
    },
  }
}

const NONE: readonly string[] = Object.freeze([])
