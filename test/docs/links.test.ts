import { existsSync } from 'node:fs'
import { readdir, readFile } from 'node:fs/promises'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { expect, it } from 'vitest'

// Every relative link of the README, the pages under docs/, CONTRIBUTING.md and the Python
// package's README leads somewhere: the file exists, and an #anchor names a heading of the
// page it points to (as GitHub makes anchors from headings).
const root = fileURLToPath(new URL('../..', import.meta.url))

async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs'), { recursive: true }))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name))
  return ['README.md', 'CONTRIBUTING.md', 'python/README.md', ...docs].filter((file) => existsSync(join(root, file)))
}

/** A heading's anchor, the way GitHub makes it. */
export function anchorOf(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-')
}

const withoutCode = (text: string) => text.replace(/^```[\s\S]*?^```/gm, '').replace(/`[^`\n]*`/g, '')

async function anchorsOf(file: string): Promise<Set<string>> {
  const text = (await readFile(file, 'utf8')).replace(/^```[\s\S]*?^```/gm, '')
  const anchors = new Set<string>()
  for (const [, heading] of text.matchAll(/^#{1,6}\s+(.*)$/gm)) anchors.add(anchorOf(heading!))
  return anchors
}

/** Every broken relative link of `file`, as "file: target (why)". */
export async function brokenLinks(file: string): Promise<string[]> {
  const text = withoutCode(await readFile(join(root, file), 'utf8'))
  const broken: string[] = []
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/i.test(target!)) continue // http:, https:, mailto:
    const [path, anchor] = target!.split('#') as [string, string | undefined]
    const resolved = path === '' ? join(root, file) : join(root, dirname(file), decodeURIComponent(path))
    if (!existsSync(resolved)) {
      broken.push(`${file}: ${target} (no such file: ${relative(root, resolved)})`)
      continue
    }
    if (anchor && resolved.endsWith('.md') && !(await anchorsOf(resolved)).has(anchor))
      broken.push(`${file}: ${target} (no heading makes #${anchor})`)
  }
  return broken
}

it('makes anchors from headings as GitHub does', () => {
  expect(anchorOf('`workflow-session` (React)')).toBe('workflow-session-react')
  expect(anchorOf('FAQ and troubleshooting')).toBe('faq-and-troubleshooting')
  expect(anchorOf('Without React: `connectToPage`')).toBe('without-react-connecttopage')
})

it('every relative link leads to a file, and every anchor to a heading', async () => {
  const files = await markdownFiles()
  expect(files.length).toBeGreaterThan(10)
  const broken = (await Promise.all(files.map(brokenLinks))).flat()
  expect(broken).toEqual([])
})

it('catches a link to a missing page and an anchor no heading makes', async () => {
  const probe = 'test/docs/.links/probe.md'
  const { mkdir, rm, writeFile } = await import('node:fs/promises')
  await mkdir(join(root, 'test/docs/.links'), { recursive: true })
  await writeFile(
    join(root, probe),
    '# Probe\n\n[fine](#probe) [gone](../../../docs/nowhere.md) [no anchor](../../../docs/reference.md#no-such-heading) [web](https://example.com)\n',
  )
  try {
    expect(await brokenLinks(probe)).toEqual([
      `${probe}: ../../../docs/nowhere.md (no such file: docs/nowhere.md)`,
      `${probe}: ../../../docs/reference.md#no-such-heading (no heading makes #no-such-heading)`,
    ])
  } finally {
    await rm(join(root, 'test/docs/.links'), { recursive: true, force: true })
  }
})
