#!/usr/bin/env node
// workflow-session conformance <base-url> [--header "Name: value"]… [--user-header "Name: value"]… [--step NAME] [--max-bytes N]
// Checks a backend against the session protocol and ends with "N passed, N failed, N skipped".
// Exit code: 0 when nothing failed, 1 when a check failed, 2 for a wrong call or a backend that does not answer.
import { type ConformanceOptions, ConformanceUnreachable, runConformance } from './conformance.js'

const USAGE = `usage: workflow-session conformance <base-url> [--header "Name: value"]… [--user-header "Name: value"]… [--step NAME] [--max-bytes N]
  --header       sent with every request (a user's cookie or token if the backend lets no anonymous caller in)
  --user-header  a signed-in user's credentials, for the listing checks (their sessions, newest first) and adoption
  --step         the name of the conformance step (default conformance_echo)
  --max-bytes    the backend's size limit for a body and a session (default 1048576)
  e.g. workflow-session conformance http://localhost:3000/api/session --user-header "Cookie: session=…"`

/** The options the arguments name, or null when they are wrong. */
function parse(rest: string[]): ConformanceOptions | null {
  const headers: Record<string, string> = {}
  let userHeaders: Record<string, string> | undefined
  const options: ConformanceOptions = { headers }
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]]
    if (value === undefined) return null
    if (flag === '--header' || flag === '--user-header') {
      const colon = value.indexOf(':')
      if (colon < 1) return null
      const into = flag === '--header' ? headers : (userHeaders ??= {})
      into[value.slice(0, colon).trim()] = value.slice(colon + 1).trim()
    } else if (flag === '--step' && value !== '') {
      options.step = value
    } else if (flag === '--max-bytes' && /^\d+$/.test(value) && Number(value) >= 1024) {
      options.maxBytes = Number(value)
    } else {
      return null
    }
  }
  return { ...options, userHeaders }
}

async function main(args: string[]): Promise<number> {
  const [command, base, ...rest] = args
  const options = parse(rest)
  if (command !== 'conformance' || !base || !/^https?:\/\//.test(base) || !options) {
    console.error(USAGE)
    return 2
  }
  let results
  try {
    results = await runConformance(base, options)
  } catch (error) {
    if (!(error instanceof ConformanceUnreachable)) throw error
    console.error(error.message)
    return 2
  }
  // A reason for skipping is printed once, under the first check it skips.
  const told = new Set<string>()
  for (const { name, ok, skipped, detail } of results) {
    if (skipped) {
      console.log(`- ${name} (skipped)`)
      if (detail && !told.has(detail)) console.log(`    ${detail}`)
      told.add(detail ?? '')
    } else {
      console.log(ok ? `✓ ${name}` : `✗ ${name}${detail ? `\n    ${detail}` : ''}`)
    }
  }
  const failed = results.filter((result) => !result.ok).length
  const skipped = results.filter((result) => result.skipped).length
  console.log(`${results.length - failed - skipped} passed, ${failed} failed, ${skipped} skipped`)
  return failed === 0 ? 0 : 1
}

process.exitCode = await main(process.argv.slice(2))
