import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { PYTHON, requirePython, ROOT, runPython, stopAllPython } from './venv.js'

// The Python package's types, as its users meet them:
// - mypy --strict passes over python/src (the package's own annotations) and python/examples;
// - every python block of the FastAPI page and of python/README.md passes mypy --strict and
//   pyright --strict as written, with the names a reader brings from their own app (their store,
//   their steps…) declared by APP_CONTEXT below, and the package's exports a block uses without
//   importing them imported, as a reader who copies the blocks into one app has them;
// - and the checkers are proven on broken input: the page's typed-variables example with a
//   misspelled variable name fails in both.

const PYRIGHT = join(ROOT, 'python/typecheck/node_modules/pyright/index.js')
const DOCS = ['docs/backends/fastapi.md', 'python/README.md']

/** The reader's own things the blocks refer to without defining them (lines of Python). */
const APP_CONTEXT: Record<string, string[]> = {
  store: ['store: _ws.SessionStore = _ws.memory_store()'],
  steps: ['steps: dict[str, _ws.Step] = {}'],
  register: ['def register(ctx: _ws.StepContext) -> _ws.StepResult:', '    raise NotImplementedError'],
  app: ['import fastapi as _fastapi', 'app = _fastapi.FastAPI()'],
  users: [
    'class _Users:',
    '    async def id_for_token(self, token: str) -> str | None:',
    '        raise NotImplementedError',
    '',
    '',
    'users = _Users()',
  ],
}

interface Block {
  file: string
  /** The line of the block's first line in its Markdown file. */
  line: number
  code: string
}

interface Problem {
  /** The checked file's name, e.g. `block-3.py`. */
  file: string
  line: number
  message: string
}

async function blocksOf(file: string): Promise<Block[]> {
  const lines = (await readFile(join(ROOT, file), 'utf8')).split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    if (!/^```python\s*$/.test(lines[i]!)) continue
    const start = i + 1
    while (i + 1 < lines.length && lines[i + 1] !== '```') i++
    blocks.push({ file, line: start + 1, code: lines.slice(start, i + 1).join('\n') })
    i++
  }
  return blocks
}

/** For each block, the module-level names it uses without binding them (Python's own symtable reads them). */
async function freeNames(blocks: Block[]): Promise<string[][]> {
  const script = `
import builtins, json, symtable, sys
def free(table, bound):
    names = set()
    for symbol in table.get_symbols():
        name = symbol.get_name()
        if symbol.is_referenced() and (table.get_type() == "module" and not (symbol.is_assigned() or symbol.is_imported()) or symbol.is_global() and name not in bound):
            names.add(name)
    for child in table.get_children():
        names |= free(child, bound)
    return names
result = []
for code in json.load(sys.stdin):
    table = symtable.symtable(code, "block", "exec")
    bound = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    result.append(sorted(name for name in free(table, bound) if not hasattr(builtins, name) and not (name.startswith("__") and name.endswith("__"))))
print(json.dumps(result))
`
  const child = spawn(requirePython(), ['-c', script], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stdin.end(JSON.stringify(blocks.map((block) => block.code)))
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  if (code !== 0) throw new Error(`reading the blocks' names failed:\n${output}`)
  return JSON.parse(output) as string[][]
}

/** The package's exports (its __all__). */
async function exportsOfPackage(): Promise<Set<string>> {
  const { code, output } = await runPython(PYTHON, ['-c', 'import json, workflow_session; print(json.dumps(workflow_session.__all__))'])
  if (code !== 0) throw new Error(output)
  return new Set(JSON.parse(output) as string[])
}

/** `python -m mypy --strict` over `files` in `cwd`: each error, by file and line. */
async function mypy(cwd: string, files: string[]): Promise<{ code: number | null; problems: Problem[]; output: string }> {
  const cache = join(ROOT, 'python/.venv/.mypy_cache-docs')
  const { code, output } = await runPython(
    PYTHON,
    ['-m', 'mypy', '--strict', '--python-version', '3.11', '--cache-dir', cache, '--no-error-summary', ...files],
    { cwd },
  )
  const problems: Problem[] = []
  for (const [, file, line, message] of output.matchAll(/^([^:\n]+\.py):(\d+): error: (.*)$/gm))
    problems.push({ file: file!, line: Number(line), message: message! })
  return { code, problems, output }
}

/** The npm `pyright` (python/typecheck) in strict mode over `cwd`: each error and warning, by file and line. */
async function pyright(cwd: string): Promise<{ problems: Problem[]; output: string }> {
  if (!existsSync(PYRIGHT)) throw new Error(`No pyright at ${PYRIGHT}: run scripts/test-env.sh (npm test runs it first)`)
  await writeFile(join(cwd, 'pyrightconfig.json'), JSON.stringify({ typeCheckingMode: 'strict', pythonVersion: '3.11' }))
  const child = spawn(process.execPath, [PYRIGHT, '--outputjson', '--pythonpath', requirePython(), '-p', cwd], {
    cwd,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let output = ''
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
  await new Promise((resolve) => child.once('exit', resolve))
  const report = JSON.parse(output) as {
    generalDiagnostics: { file: string; severity: string; message: string; range: { start: { line: number } } }[]
  }
  const problems = report.generalDiagnostics
    .filter((diagnostic) => diagnostic.severity !== 'information')
    .map((diagnostic) => ({
      file: diagnostic.file.slice(cwd.length + 1),
      line: diagnostic.range.start.line + 1,
      message: diagnostic.message,
    }))
  return { problems, output }
}

let work = ''
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ws-python-types-'))
})
afterAll(async () => {
  await stopAllPython()
  if (work) await rm(work, { recursive: true, force: true })
})

it('mypy --strict passes over python/src and python/examples', async () => {
  const { code, output } = await runPython(PYTHON, ['-m', 'mypy', '--strict', '--cache-dir', '.venv/.mypy_cache', 'src', 'examples'], {
    cwd: join(ROOT, 'python'),
  })
  expect(code, `mypy --strict python/src python/examples:\n${output}`).toBe(0)
  expect(output).toMatch(/^Success: no issues found in \d+ source files$/m)
}, 180_000)

it('the Python blocks of the FastAPI page and python/README.md pass mypy --strict and pyright --strict, and a misspelled variable fails both', async () => {
  const blocks = (await Promise.all(DOCS.map(blocksOf))).flat()
  expect(blocks.filter((block) => block.file === 'docs/backends/fastapi.md').length).toBeGreaterThanOrEqual(6)
  expect(blocks.filter((block) => block.file === 'python/README.md').length).toBeGreaterThanOrEqual(1)

  // The page's typed-variables example, broken twice: a variable read and one set under a wrong name.
  const typed = blocks.find((block) => block.code.includes('StepContext[SignupVars]'))
  expect(typed, 'the FastAPI page has a StepContext[SignupVars] example').toBeDefined()
  const misspelled = [
    { name: 'misspelled-read.py', find: 'ctx.variables["email"]', typo: 'ctx.variables["emial"]', mentions: 'emial' },
    {
      name: 'misspelled-set.py',
      find: 'variables={"status": "registered"}',
      typo: 'variables={"stauts": "registered"}',
      mentions: 'SignupVars',
    },
  ]
  for (const broken of misspelled) expect(typed!.code, broken.name).toContain(broken.find)

  const exported = await exportsOfPackage()
  const free = await freeNames(blocks)
  const origin = new Map<string, { block: Block; offset: number }>()
  const files: string[] = []
  for (const [index, block] of blocks.entries()) {
    const prelude: string[] = []
    const fromPackage = free[index]!.filter((name) => exported.has(name))
    if (fromPackage.length > 0) prelude.push(`from workflow_session import ${fromPackage.join(', ')}`)
    const context = free[index]!.flatMap((name) => APP_CONTEXT[name] ?? [])
    if (context.some((line) => line.includes('_ws.'))) prelude.push('import workflow_session as _ws')
    prelude.push(...context)
    const unknown = free[index]!.filter((name) => !exported.has(name) && !APP_CONTEXT[name])
    expect(unknown, `${block.file}:${block.line}: names neither the block, the package nor APP_CONTEXT defines`).toEqual([])
    const name = `block_${index}.py`
    await writeFile(join(work, name), `${[...prelude, block.code].join('\n')}\n`)
    origin.set(name, { block, offset: prelude.length })
    files.push(name)
  }
  for (const broken of misspelled) {
    await writeFile(join(work, broken.name), `${typed!.code.replace(broken.find, broken.typo)}\n`)
    files.push(broken.name)
  }

  const [checkedByMypy, checkedByPyright] = await Promise.all([mypy(work, files), pyright(work)])
  const where = (problem: Problem) => {
    const from = origin.get(problem.file)
    return from
      ? `${from.block.file}:${from.block.line + problem.line - 1 - from.offset}: ${problem.message}`
      : `${problem.file}:${problem.line}: ${problem.message}`
  }
  for (const [checker, { problems, output }] of [
    ['mypy --strict', checkedByMypy],
    ['pyright --strict', checkedByPyright],
  ] as const) {
    const inBlocks = problems.filter((problem) => origin.has(problem.file)).map(where)
    expect(inBlocks, `${checker} on the docs' blocks`).toEqual([])
    for (const broken of misspelled) {
      const caught = problems.filter((problem) => problem.file === broken.name)
      expect(caught.length, `${checker} must fail on ${broken.name} (${broken.typo}):\n${output.slice(-4000)}`).toBeGreaterThan(0)
      expect(caught.map((problem) => problem.message).join('\n')).toContain(broken.mentions)
    }
  }
  // mypy's exit code says the same: 1, for the broken files only.
  expect(checkedByMypy.code).toBe(1)
}, 180_000)
