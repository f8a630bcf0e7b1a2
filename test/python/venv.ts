import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { stopProcess } from '../processes.js'

/** The repository's root and the Python package's virtualenvs (scripts/test-env.sh makes them). */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
/** Python 3.11, the oldest the package supports: the servers and the type checks run on it. */
export const PYTHON = fileURLToPath(new URL('../../python/.venv/bin/python', import.meta.url))
/** Python 3.13: pytest runs on it too. */
export const PYTHON_313 = fileURLToPath(new URL('../../python/.venv-3.13/bin/python', import.meta.url))

/** Fails with what to do when the virtualenv is not there. */
export function requirePython(python = PYTHON): string {
  if (!existsSync(python))
    throw new Error(`No Python virtualenv at ${python}: run scripts/test-env.sh (npm test runs it first; it says what is missing)`)
  return python
}

/** Runs `python args…` in the repository's root to its end: its exit code and everything it wrote. */
export function runPython(
  python: string,
  args: string[],
  options: { cwd?: string } = {},
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(requirePython(python), args, { cwd: options.cwd ?? ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    started.add(child)
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.once('error', reject)
    child.once('exit', (code) => {
      started.delete(child)
      resolve({ code, output })
    })
  })
}

/** Every Python process a test file started and that has not exited, so that none outlives the file. */
const started = new Set<ChildProcess>()

export interface PythonServer {
  /** What the server printed as its address, e.g. `http://127.0.0.1:41234/api/session`. */
  url: string
  child: ChildProcess
  /** Everything it wrote, for failure messages. */
  output: () => string
}

/**
 * Starts a Python server (`args` after `python`) and resolves once it prints `<prefix> http://…`.
 * Rejects with its output when it exits first or takes longer than `timeoutMs`.
 */
export function startPython(args: string[], prefix: string, env: Record<string, string> = {}, timeoutMs = 30_000): Promise<PythonServer> {
  const child = spawn(requirePython(), args, {
    cwd: ROOT,
    env: { ...process.env, PYTHONUNBUFFERED: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  started.add(child)
  child.once('exit', () => started.delete(child))
  let output = ''
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${args.join(' ')} printed no address in ${timeoutMs} ms:\n${output}`)), timeoutMs)
    const onData = (chunk: Buffer) => {
      output += chunk.toString()
      const match = new RegExp(`${prefix} (http://\\S+)`).exec(output)
      if (match) {
        clearTimeout(timer)
        resolve({ url: match[1]!, child, output: () => output })
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`${args.join(' ')} exited (${code}):\n${output}`))
    })
  })
}

/** SIGTERM (uvicorn's graceful stop), then SIGKILL after `graceMs`; resolves with the exit code. */
export const stopPython = stopProcess

/** Stops every Python process still running (for afterAll). */
export async function stopAllPython(): Promise<void> {
  await Promise.all([...started].map((child) => stopPython(child)))
}
