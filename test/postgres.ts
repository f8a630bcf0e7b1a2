/** Where the tests find PostgreSQL: DATABASE_URL, else the local server .ci/run starts. */
export const DATABASE_URL = process.env.DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres'

let tables = 0
/** A table name of its own for each store a test opens, so tests never see each other's rows. */
export const freshTable = () => `ws_test_${process.pid}_${Date.now().toString(36)}_${++tables}`

/** Drops the tables this test process made. */
export async function dropTestTables(): Promise<void> {
  const { default: pg } = await import('pg')
  const client = new pg.Client({ connectionString: DATABASE_URL })
  await client.connect()
  const { rows } = await client.query<{ tablename: string }>(`SELECT tablename FROM pg_tables WHERE tablename LIKE $1`, [
    `ws_test_${process.pid}_%`,
  ])
  for (const { tablename } of rows) await client.query(`DROP TABLE IF EXISTS ${tablename}`)
  await client.end()
}
