import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const folder = join(dirname(fileURLToPath(import.meta.url)), '.results')

/** Keeps one scenario's rows for the report (`npm run bench` reads them back). */
export async function writeResult(name: string, rows: unknown): Promise<void> {
  await mkdir(folder, { recursive: true })
  await writeFile(join(folder, `${name}.json`), JSON.stringify(rows, null, 2))
}

export async function readResult<T>(name: string): Promise<T> {
  return JSON.parse(await readFile(join(folder, `${name}.json`), 'utf8')) as T
}
