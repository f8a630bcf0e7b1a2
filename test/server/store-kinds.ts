import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach } from 'vitest'
import {
  encryptedStore,
  fileStore,
  memoryStore,
  newKeyBase64,
  postgresStore,
  type SessionStore,
  sqliteStore,
  type StoreOptions,
} from '../../src/server/index.js'
import { DATABASE_URL, dropTestTables, freshTable } from '../postgres.js'

const encryption = { keys: { k1: newKeyBase64() }, currentKeyId: 'k1' }

export interface StoreKind {
  name: string
  /** Opens the store; called again with the same place to simulate a restart. */
  open: (place: string, options?: StoreOptions) => Promise<SessionStore>
  durable: boolean
}

/** Every store of the package, and encryption over two of them: the contract holds for each. */
export const kinds: StoreKind[] = [
  { name: 'memory', open: async (_, options) => memoryStore(options), durable: false },
  { name: 'file', open: async (place, options) => fileStore(join(place, 'sessions'), options), durable: true },
  {
    name: 'sqlite (better-sqlite3)',
    open: (place, options) => sqliteStore(join(place, 'sessions.db'), { ...options, driver: 'better-sqlite3' }),
    durable: true,
  },
  // Node's built-in binding, what `sqlite:` uses when better-sqlite3 is not installed.
  {
    name: 'sqlite (node:sqlite)',
    open: (place, options) => sqliteStore(join(place, 'sessions.db'), { ...options, driver: 'node:sqlite' }),
    durable: true,
  },
  // The "place" of a PostgreSQL store is a table of its own in the test database.
  { name: 'postgres', open: (place, options) => postgresStore(DATABASE_URL, { ...options, table: tableFor(place) }), durable: true },
  // Encryption is a codec over any store: the same contract holds through it.
  { name: 'encrypted memory', open: async (_, options) => encryptedStore(memoryStore(options), encryption), durable: false },
  {
    name: 'encrypted sqlite',
    open: async (place, options) => encryptedStore(await sqliteStore(join(place, 'sealed.db'), options), encryption),
    durable: true,
  },
]

const tables = new Map<string, string>()
const tableFor = (place: string) => tables.get(place) ?? (tables.set(place, freshTable()), tables.get(place)!)

export const opened: SessionStore[] = []
const places: string[] = []
/** Closes what the tests opened and removes their files (registered by importing this module). */
afterEach(async () => {
  await Promise.all(opened.splice(0).map((store) => store.close()))
  await Promise.all(places.splice(0).map((place) => rm(place, { recursive: true, force: true })))
})

afterAll(dropTestTables)

export async function newPlace() {
  const place = await mkdtemp(join(tmpdir(), 'ws-store-'))
  places.push(place)
  return place
}

export async function openKind(kind: StoreKind, options?: StoreOptions, place?: string) {
  const where = place ?? (await newPlace())
  const store = await kind.open(where, options)
  opened.push(store)
  return { store, place: where }
}

export async function collect(ids: AsyncIterable<string>): Promise<string[]> {
  const all: string[] = []
  for await (const id of ids) all.push(id)
  return all
}
