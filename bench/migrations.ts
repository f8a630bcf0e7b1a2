// What schema migrations cost (docs/schema-versions.md): a read of a session stored at an older
// schema version (its first read migrates it: one atomic write) and the reads after it, against a
// read of a session already current, for 10 and 10,000 variables, on each store; and, in the
// client, taking up an old local copy (migrated before it shows) against a current one. In
// process, medians; the floor is the read of a current session by a store without migrations.
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createSessionClient, memoryLocalCopy } from '../src/client/index.js'
import { defineMigrations, type Migrations, postgresStore, type SessionStore, sqliteStore } from '../src/server/index.js'
import { freshTable } from '../test/postgres.js'

const migrations = defineMigrations({
  version: 2,
  migrations: [
    {
      to: 2,
      steps: [
        { op: 'rename', from: 'v0', to: 'renamed' },
        { op: 'drop', name: 'v1' },
      ],
    },
  ],
})

export interface MigrationRow {
  store: string
  variables: number
  /** A read of a current session by a store without migrations (the floor), ms. */
  current: number
  /** The same read by a store with migrations, of a current session: what the check costs. */
  currentWithMigrations: number
  /** The first read of an old session: it migrates it. */
  first: number
  /** A later read of that session. */
  later: number
}

export interface HydrationMigrationRow {
  variables: number
  current: number
  old: number
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!
const sessionsPerCase = 9

async function timed(read: () => Promise<unknown>): Promise<number> {
  const start = performance.now()
  await read()
  return performance.now() - start
}

type Open = (migrations?: Migrations) => Promise<SessionStore>

async function measureStore(name: string, open: Open, variables: number): Promise<MigrationRow> {
  const seed = Object.fromEntries(Array.from({ length: variables }, (_, i) => [`v${i}`, `value ${i}`]))
  const before = await open()
  const named = (kind: string) => Array.from({ length: sessionsPerCase }, (_, i) => `bench-${kind}-${variables}-${i}`)
  const [old, current] = [named('old'), named('current')]
  for (const id of [...old, ...current]) await before.apply(id, { variables: seed })
  // Each case reads the same number of sessions, each one warm (read once before, not measured),
  // three rounds: so that the floor, the current sessions and the migrated ones are read alike.
  const readsOf = async (store: SessionStore, ids: string[]) => {
    const times: number[] = []
    for (let round = 0; round < 3; round++) for (const id of ids) times.push(await timed(() => store.get(id)))
    return median(times)
  }
  for (const id of current) await before.get(id)
  const floor = await readsOf(before, current)
  await before.close()
  const after = await open(migrations)
  try {
    // The floor's sessions, migrated by a first read (not measured), then read as the current ones.
    for (const id of current) await after.get(id)
    const currentWithMigrations = await readsOf(after, current)
    const firsts: number[] = []
    for (const id of old) firsts.push(await timed(() => after.get(id)))
    const later = await readsOf(after, old)
    return { store: name, variables, current: floor, currentWithMigrations, first: median(firsts), later }
  } finally {
    await after.close()
  }
}

export async function measureMigrations(databaseUrl?: string): Promise<{ rows: MigrationRow[]; hydration: HydrationMigrationRow[] }> {
  const place = await mkdtemp(join(tmpdir(), 'ws-bench-migrate-'))
  const rows: MigrationRow[] = []
  try {
    for (const variables of [10, 10_000]) {
      const file = join(place, `sessions-${variables}.db`)
      rows.push(await measureStore('sqlite', (m) => sqliteStore(file, m ? { migrations: m } : {}), variables))
      if (databaseUrl) {
        const table = freshTable()
        rows.push(await measureStore('postgres', (m) => postgresStore(databaseUrl, { table, ...(m && { migrations: m }) }), variables))
      }
    }
  } finally {
    await rm(place, { recursive: true, force: true })
  }
  return { rows, hydration: await measureHydrationMigration() }
}

/** A page taking up its local copy kept at schema version 1, against one kept at 2: start() until it shows. */
async function measureHydrationMigration(): Promise<HydrationMigrationRow[]> {
  const rows: HydrationMigrationRow[] = []
  for (const variables of [1000, 10_000]) {
    const variablesOf = Object.fromEntries(Array.from({ length: variables }, (_, i) => [`v${i}`, `value ${i}`]))
    const at = '2026-12-01T00:00:00.000Z'
    const once = async (schemaVersion?: number) => {
      const storage = memoryLocalCopy()
      await seedBase(storage, schemaVersion)
      const client = createSessionClient({ sessionId: 'bench-hydrate', storage, locks: null, migrations, fetch: offline })
      const start = performance.now()
      await client.start()
      const shown = client.getSnapshot()
      const ms = performance.now() - start
      if (!('v2' in shown)) throw new Error('the local copy did not show')
      client.setOnline(false)
      await client.stop()
      return ms
    }
    const seedBase = async (storage: ReturnType<typeof memoryLocalCopy>, schemaVersion?: number) => {
      // A page of that version wrote the copy: made by a client of it, confirmed by a fake answer.
      const writer = createSessionClient({
        sessionId: 'bench-hydrate',
        storage,
        locks: null,
        ...(schemaVersion === 2 && { migrations }),
        fetch: async () =>
          new Response(
            JSON.stringify({
              sessionId: 'bench-hydrate',
              variables: variablesOf,
              version: 3,
              createdAt: at,
              updatedAt: at,
              ...(schemaVersion === 2 && { schemaVersion }),
            }),
            { headers: { 'content-type': 'application/json' } },
          ),
        deltas: false,
      })
      await writer.refresh()
      await writer.stop()
    }
    const current: number[] = []
    const old: number[] = []
    for (let round = 0; round < 13; round++) {
      current.push(await once(2))
      old.push(await once(1))
    }
    rows.push({ variables, current: median(current.slice(2)), old: median(old.slice(2)) })
  }
  return rows
}

const offline: typeof fetch = () => Promise.reject(new TypeError('offline'))

export function migrationsTable({ rows, hydration }: { rows: MigrationRow[]; hydration: HydrationMigrationRow[] }): string {
  const ms = (value: number) => value.toFixed(2)
  const x = (value: number, floor: number) => `${(value / floor).toFixed(2)}×`
  return `## Schema migrations: a read of an old session, and of a current one

In process, median ms of 27 reads (9 sessions, each warm, three rounds). The floor is a read of a
current session by a store without migrations;
"current, with migrations" is the same read once the store has them (the check compares two
numbers of the head: it must cost nothing); the first read of an old session migrates it (one
atomic write of what changed: a rename and a drop), the later reads must cost what the floor
costs.

| store | variables | floor (no migrations) | current, with migrations | first read of an old session | later reads |
|---|---|---|---|---|---|
${rows.map((r) => `| ${r.store} | ${r.variables.toLocaleString('en')} | ${ms(r.current)} | ${ms(r.currentWithMigrations)} (${x(r.currentWithMigrations, r.current)}) | ${ms(r.first)} (${x(r.first, r.current)}) | ${ms(r.later)} (${x(r.later, r.current)}) |`).join('\n')}

A page taking up its local copy (\`start()\` until the values show, Node, memory storage, median of
11): kept at the page's schema version, and kept at version 1 (migrated before it shows).

| variables | current copy ms | old copy ms | old vs current |
|---|---|---|---|
${hydration.map((r) => `| ${r.variables.toLocaleString('en')} | ${ms(r.current)} | ${ms(r.old)} | ${x(r.old, r.current)} |`).join('\n')}
`
}
