import { existsSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { installPacked, packedTarball, run } from './packed.js'

// `npm install workflow-session` alone, with no driver package: `openStore('sqlite:…')` works on
// Node's built-in node:sqlite. Run on the Node line the suite runs on (CI runs it on 22 and 26).

let project = ''

beforeAll(async () => {
  project = await mkdtemp(join(tmpdir(), 'ws-embedded-'))
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'embedded-default', private: true, type: 'module' }))
  await installPacked(project, await packedTarball())
  await writeFile(
    join(project, 'app.mjs'),
    `import { openStore, createSessionHandler } from 'workflow-session/server'
const store = await openStore('sqlite:' + process.argv[2])
const handler = createSessionHandler({ store })
const post = await handler(new Request('http://app/api/session/embedded-session-1', {
  method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ variables: { email: 'a@b.c' } }),
}))
await store.close()
const reopened = await openStore('sqlite:' + process.argv[2])
console.log(JSON.stringify({ status: post.status, snapshot: await reopened.get('embedded-session-1') }))
await reopened.close()
`,
  )
}, 240_000)

afterAll(async () => {
  if (project) await rm(project, { recursive: true, force: true })
})

const [major] = process.versions.node.split('.').map(Number) as [number]

it('stores sessions in a SQLite file with no driver package installed (node:sqlite)', async () => {
  expect(existsSync(join(project, 'node_modules/better-sqlite3'))).toBe(false)
  const output = await run(process.execPath, ['--disable-warning=ExperimentalWarning', 'app.mjs', join(project, 'data/sessions.db')], {
    cwd: project,
  })
  const { status, snapshot } = JSON.parse(output) as { status: number; snapshot: { variables: unknown; version: number } }
  expect(status).toBe(200)
  expect(snapshot).toMatchObject({ variables: { email: 'a@b.c' }, version: 1 })
  expect(existsSync(join(project, 'data/sessions.db'))).toBe(true)
}, 60_000)

it(`says on stderr what Node ${major} says about node:sqlite, and nothing with the flag the docs give`, async () => {
  const stderrOf = async (flags: string[]) => {
    const { spawnSync } = await import('node:child_process')
    const child = spawnSync(process.execPath, [...flags, 'app.mjs', join(project, `data/warn-${flags.length}.db`)], {
      cwd: project,
      encoding: 'utf8',
    })
    expect(child.status, child.stderr).toBe(0)
    return child.stderr
  }
  // Node 22 marks node:sqlite experimental and warns once; from 24 on it says nothing.
  expect(await stderrOf([])).toMatch(major === 22 ? /ExperimentalWarning: SQLite is an experimental feature/ : /^$/)
  expect(await stderrOf(['--disable-warning=ExperimentalWarning'])).toBe('')
}, 60_000)
