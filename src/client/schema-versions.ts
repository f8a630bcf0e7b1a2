import { type Migrations, SET_ASIDE_KEY } from '../shared/migrations.js'
import type { SessionSnapshot } from '../shared/protocol.js'
import { fromPatchBody } from './changes.js'
import type { QueuedPatch } from './view.js'

/**
 * This page's schema version (docs/protocol.md, "Schema versions"): what the local copy holds in
 * an older one is migrated with the app's migrations as it is read, before it shows or is sent —
 * the base, and the patches queued by this page or a closed one. What it cannot move (a patch
 * across a function step) is sent as it was written, and the server says whether it takes it.
 * The migrating is the declaration's own: a page that declares none carries none of it.
 *
 * @example
 * const schema = clientSchema(migrations)
 * view.restore(schema.base(base), patches.map(schema.patch))
 */
export function clientSchema(migrations: Migrations | undefined) {
  const version = migrations?.version ?? 1
  return {
    version,
    /** What a request carries: nothing at version 1 (absent means 1). */
    field: version === 1 ? {} : { schemaVersion: version },
    /** The base in this page's version: an older one migrated; a newer one as it is (the page is then out of date). */
    base: (snapshot: SessionSnapshot | null) => (snapshot && migrations ? migrations.migrateSnapshot(snapshot) : snapshot),
    /** The names a migration set aside in `snapshot` (its `ws:setAside`); the same empty array when none. */
    setAside: (snapshot: SessionSnapshot | null): readonly string[] => {
      const aside = snapshot?.variables[SET_ASIDE_KEY]
      return aside && typeof aside === 'object' && !Array.isArray(aside) ? Object.keys(aside) : NONE
    },
    /** A queued patch in this page's version: renamed and moved names follow their variable, dropped ones go. */
    patch: (queued: QueuedPatch): QueuedPatch => {
      const body = migrations ? migrations.migrateBody(queued.body) : queued.body
      return body === queued.body ? queued : { ...queued, body, changes: fromPatchBody(body) }
    },
  }
}

const NONE: readonly string[] = Object.freeze([])
