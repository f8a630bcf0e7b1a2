import { spawn } from 'node:child_process'
import { afterAll, expect, it } from 'vitest'
import { ROOT, requirePython } from './venv.js'

let child: ReturnType<typeof spawn> | undefined
afterAll(() => {
  if (child && child.exitCode === null) child.kill('SIGKILL')
})

// The Python package's own tests (python/tests), inside npm test: one closing line for the whole
// suite, and pytest's counts and failures in the message when it fails.
it('passes the Python package tests (pytest python/tests)', async () => {
  const python = requirePython()
  const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve, reject) => {
    child = spawn(python, ['-m', 'pytest', 'python/tests', '-q', '-p', 'no:cacheprovider'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    let text = ''
    child.stdout!.on('data', (chunk: Buffer) => (text += chunk.toString()))
    child.stderr!.on('data', (chunk: Buffer) => (text += chunk.toString()))
    child.once('error', reject)
    child.once('exit', (exitCode) => resolve({ code: exitCode, output: text }))
  })
  const summary = output.trim().split('\n').at(-1) ?? ''
  // Exit 0 with at least one test passed (exit 5 would be "no tests ran").
  expect(code, `pytest exited ${code}: ${summary}\n\n${output.slice(-12_000)}`).toBe(0)
  expect(summary).toMatch(/^\d+ passed/)
}, 300_000)
