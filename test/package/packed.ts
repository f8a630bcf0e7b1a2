import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { cp, mkdir, readdir, readFile, rename, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'

const execFileAsync = promisify(execFile)

export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

const PREFIX = 'workflow-session-pack-'

/** Runs a command; on failure the error message carries its output. */
export async function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number },
): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      timeout: options.timeoutMs ?? 120_000,
      maxBuffer: 64 * 1024 * 1024,
    })
    return stdout
  } catch (error) {
    const { stdout = '', stderr = '' } = error as { stdout?: string; stderr?: string }
    throw new Error(`${command} ${args.join(' ')} failed in ${options.cwd}:\n${stdout}\n${stderr}`, { cause: error })
  }
}

/** Installs the packed package (and what it depends on) into the project at `dir`, changing no file of it but node_modules. */
export async function installPacked(dir: string, tarball: string): Promise<void> {
  await run('npm', ['install', '--no-save', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', tarball], { cwd: dir })
}

let packing: Promise<string> | undefined

/**
 * The package as `npm pack` makes it from the working tree (its `prepack` builds), packed once
 * per test run: test files run in worker processes of one vitest process, so the first to ask
 * packs into a folder named after that process and the others wait for its tarball.
 */
export function packedTarball(): Promise<string> {
  return (packing ??= packOnce())
}

async function packOnce(): Promise<string> {
  const dir = join(tmpdir(), PREFIX + processKey(process.ppid))
  const tarball = join(dir, 'workflow-session.tgz')
  const failed = join(dir, 'failed.txt')
  await mkdir(dir, { recursive: true })
  try {
    await mkdir(join(dir, 'lock'))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    return waitForTarball(tarball, failed)
  }
  const work = join(dir, 'work')
  try {
    await removeFinishedRuns()
    await copySources(work)
    const packed = (await run('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: work, timeoutMs: 180_000 }))
      .trim()
      .split('\n')
      .pop()!
    await rename(join(dir, packed), tarball)
    return tarball
  } catch (error) {
    await writeFile(failed, String(error))
    throw error
  } finally {
    await rm(work, { recursive: true, force: true })
  }
}

/**
 * What `npm pack` reads, copied, so that the build writes no dist/ into the checkout (others may
 * be building or reading it): the sources, the build's tsconfig files, package.json and the
 * published files; node_modules is a link to the checkout's.
 */
async function copySources(work: string): Promise<void> {
  const manifest = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { files?: string[] }
  const always = (await readdir(ROOT)).filter((name) => /^(readme|license|licence|changelog)/i.test(name))
  const paths = new Set([
    'package.json',
    'tsconfig.json',
    'tsconfig.build.json',
    'src',
    ...always,
    ...(manifest.files ?? []).filter((path) => path !== 'dist'),
  ])
  await mkdir(work, { recursive: true })
  for (const path of paths) {
    if (existsSync(join(ROOT, path))) await cp(join(ROOT, path), join(work, path), { recursive: true })
  }
  await symlink(join(ROOT, 'node_modules'), join(work, 'node_modules'), 'dir')
}

async function waitForTarball(tarball: string, failed: string): Promise<string> {
  const deadline = Date.now() + 240_000
  while (Date.now() < deadline) {
    if (existsSync(tarball)) return tarball
    if (existsSync(failed)) throw new Error(`Packing failed in another test file:\n${await readFile(failed, 'utf8')}`)
    await new Promise((resolve) => setTimeout(resolve, 250))
  }
  throw new Error(`No tarball at ${tarball} after 240 s`)
}

/**
 * A process's pid and start time: a pid alone may be reused by a later run, which must not take
 * an old tarball. Without /proc (not Linux), this worker's own pid: no sharing, still correct.
 */
function processKey(pid: number): string {
  const startTime = startTimeOf(pid)
  return startTime === undefined ? `${process.pid}-${Date.now()}` : `${pid}-${startTime}`
}

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Field 22; the fields after the parenthesised command name start at field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Deletes the folders of earlier runs whose process has ended. */
async function removeFinishedRuns(): Promise<void> {
  for (const name of await readdir(tmpdir())) {
    if (!name.startsWith(PREFIX)) continue
    const [pid, startTime] = name.slice(PREFIX.length).split('-').map(Number)
    if (pid === undefined || !Number.isInteger(pid)) continue
    const current = startTimeOf(pid)
    if (!isAlive(pid) || (current !== undefined && Number(current) !== startTime))
      await rm(join(tmpdir(), name), { recursive: true, force: true })
  }
}
