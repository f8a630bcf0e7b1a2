#!/usr/bin/env node
// workflow-session conformance <base-url> [--header "Name: value"]…
// Checks a backend against the session protocol and prints "N passed, N failed".
import { runConformance } from './conformance.js'

const USAGE = 'usage: workflow-session conformance <base-url> [--header "Name: value"]…\n  e.g. workflow-session conformance http://localhost:3000/api/session'

async function main(args: string[]): Promise<number> {
  const [command, base, ...rest] = args
  if (command !== 'conformance' || !base || !/^https?:\/\//.test(base)) {
    console.error(USAGE)
    return 2
  }
  const headers: Record<string, string> = {}
  for (let i = 0; i < rest.length; i++) {
    const header = rest[i] === '--header' ? rest[++i] : undefined
    const colon = header?.indexOf(':') ?? -1
    if (!header || colon < 1) {
      console.error(USAGE)
      return 2
    }
    headers[header.slice(0, colon).trim()] = header.slice(colon + 1).trim()
  }
  const results = await runConformance(base, { headers })
  for (const result of results) console.log(result.ok ? `✓ ${result.name}` : `✗ ${result.name}\n    ${result.detail}`)
  const failed = results.filter((result) => !result.ok).length
  console.log(`${results.length - failed} passed, ${failed} failed`)
  return failed === 0 ? 0 : 1
}

process.exitCode = await main(process.argv.slice(2))
