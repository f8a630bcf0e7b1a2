import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { afterAll, describe, expect, it } from 'vitest'
import { encryptedStorage } from '../../src/client/encrypted-storage.js'
import { createSessionClient, encryptedLocalCopy, memoryLocalCopy } from '../../src/client/index.js'
import { createSessionHandler, encryptedStore, fileStore, newKeyBase64, sqliteStore, workflowDataKey } from '../../src/server/index.js'

const places: string[] = []
afterAll(() => Promise.all(places.map((place) => rm(place, { recursive: true, force: true }))))
async function place() {
  const dir = await mkdtemp(join(tmpdir(), 'ws-crypt-'))
  places.push(dir)
  return dir
}

const SECRET = 'ada.lovelace@example.com'
const k1 = newKeyBase64()
const k2 = newKeyBase64()

describe('encryptedStore', () => {
  it('keeps ciphertext in the file and the SQLite row, and plaintext for its callers', async () => {
    const dir = await place()
    const files = encryptedStore(fileStore(join(dir, 'files')), { keys: { k1 }, currentKeyId: 'k1' })
    const dbPath = join(dir, 'sessions.db')
    const rows = encryptedStore(await sqliteStore(dbPath), { keys: { k1 }, currentKeyId: 'k1' })
    for (const store of [files, rows]) {
      await store.apply('secret-session-1', { variables: { email: SECRET, card: { last4: '4242' } } })
      expect(await store.get('secret-session-1')).toMatchObject({ variables: { email: SECRET, card: { last4: '4242' } }, version: 1 })
    }
    const raw = await readFile(join(dir, 'files', 'secret-session-1.json'), 'utf8')
    expect(raw).not.toContain(SECRET)
    expect(raw).not.toContain('4242')
    expect(raw).toContain('"~enc":"k1"')
    await rows.close()
    const row = new Database(dbPath)
      .prepare("SELECT group_concat(value, ' ') AS record FROM ws_variables WHERE session_id = ?")
      .get('secret-session-1') as { record: string }
    expect(row.record).toContain('"~enc":"k1"')
    expect(row.record).not.toContain(SECRET)
    expect(row.record).not.toContain('4242')
    await files.close()
  })

  it("seals a run's input, progress and output in the SQLite row, and hands them back in plaintext", async () => {
    const dbPath = join(await place(), 'runs.db')
    const store = encryptedStore(await sqliteStore(dbPath), { keys: { k1 }, currentKeyId: 'k1' })
    await store.startRun('secret-session-2', { runId: 'run-secret-1', step: 'mail', input: { to: SECRET } })
    await store.touchRun('secret-session-2', 'run-secret-1', { value: { sending: SECRET } })
    await store.finishRun('secret-session-2', 'run-secret-1', { status: 'succeeded', output: { sentTo: SECRET } })
    expect(await store.getRun('secret-session-2', 'run-secret-1')).toMatchObject({
      input: { to: SECRET },
      progress: { sending: SECRET },
      output: { sentTo: SECRET },
    })
    await store.close()
    const row = new Database(dbPath).prepare('SELECT record FROM ws_runs WHERE run_id = ?').get('run-secret-1') as { record: string }
    expect(row.record).toContain('"~enc":"k1"')
    expect(row.record).not.toContain(SECRET)
  })

  it('fails clearly with a wrong key or a missing key id', async () => {
    const dir = await place()
    await encryptedStore(fileStore(dir), { keys: { k1 }, currentKeyId: 'k1' }).apply('secret-session-2', { variables: { email: SECRET } })
    const wrongKey = encryptedStore(fileStore(dir), { keys: { k1: k2 }, currentKeyId: 'k1' })
    await expect(wrongKey.get('secret-session-2')).rejects.toThrow(
      /Cannot decrypt variable "email" of session "secret-session-2" with key "k1": wrong key/,
    )
    const noKey = encryptedStore(fileStore(dir), { keys: { k2 }, currentKeyId: 'k2' })
    await expect(noKey.get('secret-session-2')).rejects.toThrow(/encrypted with key "k1", which is not among the keys/)
    expect(() => encryptedStore(fileStore(dir), { keys: { k1 }, currentKeyId: 'k9' })).toThrow(/no key with id "k9"/)
  })

  it('rotates: old values read with the old key, new values sealed with the new one', async () => {
    const dir = await place()
    await encryptedStore(fileStore(dir), { keys: { k1 }, currentKeyId: 'k1' }).apply('rotate-session', { variables: { old: 'from k1' } })
    const rotated = encryptedStore(fileStore(dir), { keys: { k1, k2 }, currentKeyId: 'k2' })
    await rotated.apply('rotate-session', { variables: { fresh: 'from k2' } })
    expect((await rotated.get('rotate-session'))!.variables).toEqual({ old: 'from k1', fresh: 'from k2' })
    const raw = await readFile(join(dir, 'rotate-session.json'), 'utf8')
    expect(raw).toContain('"~enc":"k1"')
    expect(raw).toContain('"~enc":"k2"')
  })

  it('refuses bad names and values as a plain store does, though it seals values before the merge', async () => {
    const store = encryptedStore(fileStore(await place()), { keys: { k1 }, currentKeyId: 'k1' })
    await store.apply('secret-session-4', { variables: { kept: 1 } })
    let deep: unknown = 'bottom'
    for (let i = 0; i < 70; i++) deep = [deep]
    await expect(store.apply('secret-session-4', JSON.parse('{"variables": {"__proto__": {"x": 1}}}'))).rejects.toMatchObject({
      code: 'invalid_key',
    })
    await expect(store.apply('secret-session-4', { variables: { deep: deep as never } })).rejects.toMatchObject({ code: 'invalid_patch' })
    await expect(store.apply('secret-session-4', { deleted: ['constructor'] })).rejects.toMatchObject({ code: 'invalid_key' })
    expect(await store.get('secret-session-4')).toMatchObject({ version: 1, variables: { kept: 1 } })
  })

  it('serves the protocol and steps, with workflow stamps, over an encrypted store', async () => {
    const store = encryptedStore(fileStore(await place()), { keys: { k1 }, currentKeyId: 'k1' })
    const handler = createSessionHandler({
      store,
      steps: { echo: ({ workflow }) => ({ output: workflow<{ email: string }>('signup').get('email') ?? null }) },
    })
    const post = (path: string, body: unknown) =>
      handler(
        new Request(`http://localhost/api/session/secret-session-3${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }),
      )
    await post('', { variables: { [workflowDataKey('signup', 'email')]: SECRET } })
    expect(await (await post('/run/echo', {})).json()).toMatchObject({ output: SECRET })
    expect((await store.getWorkflow('secret-session-3', 'signup'))!.lastModified).toEqual(expect.any(String))
  })
})

describe('encryptedStorage (the device cache)', () => {
  it('keeps no plaintext on the device, and a record sealed with another key reads as absent', async () => {
    const raw = memoryLocalCopy()
    const client = createSessionClient({
      endpoint: 'http://localhost/api/session',
      sessionId: 'device-secret-1',
      storage: raw,
      plugins: [encryptedLocalCopy(k1)],
      locks: null,
    })
    client.set('email', SECRET)
    await client.persist()
    const [name] = await raw.keys()
    expect(JSON.stringify(await raw.get(name!))).not.toContain(SECRET)
    expect(await encryptedStorage(raw, k1).get(name!)).toMatchObject({ pending: { variables: { email: SECRET } } })
    expect(await encryptedStorage(raw, k2).get(name!)).toBeUndefined()
    await client.stop()
  })
})
