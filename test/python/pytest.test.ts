import { afterAll, it } from 'vitest'
import { PYTHON, PYTHON_313, runPython, stopAllPython } from './venv.js'

afterAll(stopAllPython)

// The Python package's own tests (python/tests), inside npm test, on the oldest and the newest
// Python the package supports, each against the wheel installed in its virtualenv: one closing
// line per Python, and pytest's counts and failures in the message when it fails. The two run
// at once (each mostly waits on its servers and databases).
it.concurrent.for([
  ['3.11', PYTHON],
  ['3.13', PYTHON_313],
] as const)(
  'passes the Python package tests on Python %s (pytest python/tests)',
  { timeout: 300_000 },
  async ([version, python], { expect }) => {
    const reported = await runPython(python, ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'])
    expect(reported.output.trim(), `the virtualenv ${python}`).toBe(version)
    const { code, output } = await runPython(python, ['-m', 'pytest', 'python/tests', '-q', '-p', 'no:cacheprovider'])
    const summary = output.trim().split('\n').at(-1) ?? ''
    // Exit 0 with tests passed and nothing else: no skipped test (exit 5 would be "no tests ran").
    expect(code, `pytest on Python ${version} exited ${code}: ${summary}\n\n${output.slice(-12_000)}`).toBe(0)
    expect(summary).toMatch(/^\d+ passed in /)
  },
)
