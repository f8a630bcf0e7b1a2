import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import ts from 'typescript'
import { expect, it } from 'vitest'

// The React entry re-exports everything of `workflow-session/client` (an app needs one import
// path), by name, since a 'use client' module may not `export *`.
it('the React entry exports every name of the client entry, values and types', () => {
  const root = fileURLToPath(new URL('../..', import.meta.url))
  const config = ts.parseJsonConfigFileContent(
    ts.readConfigFile(join(root, 'tsconfig.json'), (path) => ts.sys.readFile(path)).config,
    ts.sys,
    root,
  )
  const files = { client: join(root, 'src/client/index.ts'), react: join(root, 'src/react/index.ts') }
  const program = ts.createProgram(Object.values(files), config.options)
  const checker = program.getTypeChecker()
  const names = (file: string) =>
    checker.getExportsOfModule(checker.getSymbolAtLocation(program.getSourceFile(file)!)!).map((symbol) => symbol.name)
  const react = new Set(names(files.react))
  expect(names(files.client).filter((name) => !react.has(name))).toEqual([])
  expect(ts.sys.readFile(files.react)).not.toMatch(/^export \* from/m)
}, 60_000)
