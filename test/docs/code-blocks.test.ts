import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { afterAll, expect, it } from 'vitest'

// Every ts/tsx block of the README and of the pages under docs/ compiles as written, with the
// imports a reader would add: a name the package exports and the block uses without importing
// it is imported from the entry a reader would pick. Names that stand for the reader's own
// code (their store, their steps, their secret…) are declared by APP_CONTEXT below, unless the
// block declares them itself. Everything else must be in the block.

const root = fileURLToPath(new URL('../..', import.meta.url))
const work = join(root, 'test/docs/.blocks')

/** The reader's own things the docs refer to without defining them. */
const APP_CONTEXT: Record<string, string> = {
  store: "declare const store: import('workflow-session/server').SessionStore",
  steps: "declare const steps: import('workflow-session/server').Steps",
  authorize: 'declare const authorize: (request: Request) => Promise<string | null>',
  secret: 'declare const secret: Uint8Array',
  sessionId: 'declare const sessionId: string',
  userIdFromCookie: 'declare function userIdFromCookie(request: Request): string | null',
  migrations: "declare const migrations: import('workflow-session/client').Migrations",
  client: "declare const client: import('workflow-session/client').SessionClient",
}

/** Where a reader imports each export from, in order of preference by the block's kind. */
const ENTRIES = {
  tsx: ['workflow-session', 'workflow-session/client', 'workflow-session/server', 'workflow-session/msw', 'workflow-session/devtools'],
  ts: ['workflow-session/server', 'workflow-session', 'workflow-session/client', 'workflow-session/msw', 'workflow-session/devtools'],
}
const ENTRY_FILES: Record<string, string> = {
  'workflow-session': 'src/react/index.ts',
  'workflow-session/client': 'src/client/index.ts',
  'workflow-session/server': 'src/server/index.ts',
  'workflow-session/msw': 'src/msw.ts',
  'workflow-session/devtools': 'src/devtools/index.ts',
}

interface Block {
  file: string
  line: number
  kind: 'ts' | 'tsx'
  code: string
}

async function markdownFiles(): Promise<string[]> {
  const docs = (await readdir(join(root, 'docs'), { recursive: true }))
    .filter((name) => name.endsWith('.md'))
    .map((name) => join('docs', name))
  return ['README.md', ...docs]
}

async function blocksOf(file: string): Promise<Block[]> {
  const lines = (await readFile(join(root, file), 'utf8')).split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const open = /^```(ts|tsx|typescript)\s*$/.exec(lines[i]!)
    if (!open) continue
    const start = i + 1
    while (i + 1 < lines.length && lines[i + 1] !== '```') i++
    blocks.push({ file, line: start + 1, kind: open[1] === 'tsx' ? 'tsx' : 'ts', code: lines.slice(start, i + 1).join('\n') })
    i++
  }
  return blocks
}

function compilerOptions(): ts.CompilerOptions {
  const config = ts.readConfigFile(join(root, 'tsconfig.json'), (path) => ts.sys.readFile(path))
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  // Examples may show a value without using it.
  return { ...parsed.options, noEmit: true, noUnusedLocals: false, noUnusedParameters: false }
}

/** Each entry's export names, read by the compiler. */
function exportsByEntry(options: ts.CompilerOptions): Map<string, Set<string>> {
  const program = ts.createProgram(
    Object.values(ENTRY_FILES).map((file) => join(root, file)),
    options,
  )
  const checker = program.getTypeChecker()
  const byEntry = new Map<string, Set<string>>()
  for (const [entry, file] of Object.entries(ENTRY_FILES)) {
    const symbol = checker.getSymbolAtLocation(program.getSourceFile(join(root, file))!)!
    byEntry.set(entry, new Set(checker.getExportsOfModule(symbol).map((exported) => exported.name)))
  }
  return byEntry
}

/** Names the block imports or declares, and every identifier it uses. */
function namesIn(block: Block): { bound: Set<string>; used: Set<string> } {
  const source = ts.createSourceFile(
    `block.${block.kind}`,
    block.code,
    ts.ScriptTarget.Latest,
    true,
    block.kind === 'tsx' ? ts.ScriptKind.TSX : ts.ScriptKind.TS,
  )
  const bound = new Set<string>()
  const used = new Set<string>()
  const visit = (node: ts.Node) => {
    if (ts.isIdentifier(node)) {
      const parent = node.parent
      const isName = parent && 'name' in parent && (parent as { name?: ts.Node }).name === node
      const isProperty = parent && ts.isPropertyAccessExpression(parent) && parent.name === node
      if (
        isName &&
        (ts.isImportSpecifier(parent) ||
          ts.isImportClause(parent) ||
          ts.isNamespaceImport(parent) ||
          ts.isVariableDeclaration(parent) ||
          ts.isFunctionDeclaration(parent) ||
          ts.isClassDeclaration(parent) ||
          ts.isTypeAliasDeclaration(parent) ||
          ts.isInterfaceDeclaration(parent) ||
          ts.isParameter(parent) ||
          ts.isBindingElement(parent))
      ) {
        bound.add(node.text)
      } else if (!isProperty && !(parent && ts.isPropertyAssignment(parent) && parent.name === node)) {
        used.add(node.text)
      }
    }
    ts.forEachChild(node, visit)
  }
  visit(source)
  return { bound, used }
}

afterAll(() => rm(work, { recursive: true, force: true }))

it('compiles every ts and tsx block of the README and docs/ (with the imports a reader would add)', async () => {
  const options = compilerOptions()
  const exported = exportsByEntry(options)
  const blocks = (await Promise.all((await markdownFiles()).map(blocksOf))).flat()
  expect(blocks.length).toBeGreaterThan(5)

  await rm(work, { recursive: true, force: true })
  await mkdir(work, { recursive: true })
  const origin = new Map<string, Block>()
  const files: string[] = []
  for (const [index, block] of blocks.entries()) {
    const { bound, used } = namesIn(block)
    const prelude: string[] = []
    for (const entry of ENTRIES[block.kind]) {
      const names = [...used].filter((name) => !bound.has(name) && exported.get(entry)!.has(name))
      for (const name of names) bound.add(name)
      if (names.length > 0) prelude.push(`import { ${names.join(', ')} } from '${entry}'`)
    }
    for (const [name, declaration] of Object.entries(APP_CONTEXT)) if (used.has(name) && !bound.has(name)) prelude.push(declaration)
    const file = join(work, `block-${index}.${block.kind}`)
    // One line of prelude, so that block lines map back to the Markdown by a fixed offset.
    await writeFile(file, `${prelude.join('; ')}${prelude.length ? ';' : ''} export {}\n${block.code}\n`)
    origin.set(file, block)
    files.push(file)
  }

  const program = ts.createProgram(files, options)
  const problems = ts
    .getPreEmitDiagnostics(program)
    .filter((diagnostic) => diagnostic.file && origin.has(diagnostic.file.fileName))
    .map((diagnostic) => {
      const block = origin.get(diagnostic.file!.fileName)!
      const { line } = diagnostic.file!.getLineAndCharacterOfPosition(diagnostic.start ?? 0)
      return `${block.file}:${block.line + line - 1}: ${ts.flattenDiagnosticMessageText(diagnostic.messageText, '\n')}`
    })
  expect(problems, `in ${relative(root, work)}`).toEqual([])
}, 120_000)
