import type { SessionStore } from './types.js'

/** How far `migrateSessions` got: sessions looked at, and how many of them it migrated. */
export interface MigrationProgress {
  done: number
  migrated: number
}

/**
 * Migrates every stored session to the store's schema version ahead of time (a read would
 * migrate each one anyway, when it comes): a job to run after a deploy, so that no user's first
 * read pays for it. One session at a time, in no particular order; `onProgress` is told after each.
 * Safe beside running servers and another such job: a session is migrated once.
 *
 * @example
 * const store = await openStore(process.env.DATABASE_URL!, { migrations })
 * await migrateSessions(store, { onProgress: ({ done, migrated }) => console.log(done, migrated) })
 */
export async function migrateSessions(
  store: SessionStore,
  { onProgress }: { onProgress?: (progress: MigrationProgress) => void } = {},
): Promise<MigrationProgress> {
  if (!store.migrate) throw new TypeError('This store does not migrate sessions (give it `migrations`: memoryStore, sqliteStore, …)')
  const progress: MigrationProgress = { done: 0, migrated: 0 }
  for await (const sessionId of store.ids()) {
    if (await store.migrate(sessionId)) progress.migrated++
    progress.done++
    onProgress?.({ ...progress })
  }
  return progress
}
