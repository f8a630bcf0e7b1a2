import { spawn } from 'node:child_process'
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, expect, it } from 'vitest'

// The stories are published as part of the docs: `npm run build-storybook` must keep building a
// static Storybook, with a Docs page per component, that lists every story file.
const root = fileURLToPath(new URL('../..', import.meta.url))
let out: string | undefined
afterAll(async () => {
  if (out) await rm(out, { recursive: true, force: true })
})

it('builds the static Storybook with its Docs pages and every story', async () => {
  out = await mkdtemp(join(tmpdir(), 'ws-storybook-'))
  const build = spawn(process.execPath, ['node_modules/storybook/dist/bin/dispatcher.js', 'build', '--quiet', '--output-dir', out], {
    cwd: root,
    env: { ...process.env, STORYBOOK_DISABLE_TELEMETRY: '1', CI: 'true' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  build.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  build.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  const code = await new Promise<number | null>((resolve) => build.on('close', resolve))
  expect(code, output.slice(-3000)).toBe(0)
  const files = await readdir(out)
  expect(files).toEqual(expect.arrayContaining(['index.html', 'iframe.html', 'index.json']))
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as {
    entries: Record<string, { type: string; importPath: string }>
  }
  const entries = Object.values(index.entries)
  const storyFiles = (await readdir(join(root, 'stories'))).filter((name) => name.endsWith('.stories.tsx'))
  for (const file of storyFiles) {
    expect(
      entries.some((entry) => entry.type === 'story' && entry.importPath.endsWith(file)),
      file,
    ).toBe(true)
    expect(
      entries.some((entry) => entry.type === 'docs' && entry.importPath.endsWith(file)),
      `Docs page of ${file}`,
    ).toBe(true)
  }
}, 240_000)
