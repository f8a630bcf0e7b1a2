// @vitest-environment jsdom
// The panel (mountPanel, which mountSessionDevtools loads on demand) in its shadow root, driven by a small fake client (the members
// the panel uses, and a fake inspector whose data each test sets), and once against a real client.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { createSessionClient, memoryLocalCopy, type SessionClient, SessionError } from '../../src/client/index.js'
import type { InspectorEvent, SessionInspection, SessionInspector } from '../../src/devtools/inspector.js'
import { mountPanel } from '../../src/devtools/panel.js'
import { createSessionHandler, memoryStore } from '../../src/server/index.js'

// lit-html's development build says so once, at import (mountSessionDevtools marks it said before it loads the panel; here the panel is imported at once).
vi.hoisted(() => {
  ;(globalThis as { litIssuedWarnings?: Set<string> }).litIssuedWarnings = new Set(['dev-mode'])
})

// A fake client brings its fake inspector; a real one gets the real inspector.
vi.mock('../../src/devtools/inspector.js', async (importOriginal) => {
  const actual = await importOriginal<typeof import('../../src/devtools/inspector.js')>()
  return {
    ...actual,
    inspectSession: (client: SessionClient) =>
      (client as { fakeInspector?: SessionInspector }).fakeInspector ?? actual.inspectSession(client),
  }
})

const SECRET = 'top-secret-value'

function baseInspection(): SessionInspection {
  return {
    at: Date.now(),
    sessionId: 'session-0123456789abcdef',
    clientId: 'c-page',
    endpoint: '/api/session',
    status: {
      isDirty: false,
      isSyncing: false,
      lastSyncedAt: null,
      pendingKeys: [],
      error: null,
      isOnline: true,
      isPersistent: true,
      isHydrated: true,
      version: 12,
      needsUpdate: false,
      setAside: [],
    },
    base: { version: 12, schemaVersion: 1, createdAt: '', updatedAt: '' },
    variables: [
      { key: 'email', value: 'a@b.c', state: 'refused', error: new SessionError('bad_request', 'email is not allowed', 400) },
      { key: 'password', value: SECRET, state: 'confirmed' },
      { key: 'notes', value: 'x'.repeat(200), state: 'pending' },
      { key: 'wf:checkout:v:address', value: { city: 'Paris' }, state: 'queued' },
      { key: 'wf:checkout:step', value: 'payment', state: 'sending' },
    ],
    queue: [],
    localCopy: { storage: 'IndexedDB', persistent: true, lastWrite: null, leftByPages: [] },
    tab: { clientId: 'c-page', locks: true, holdsLock: true },
    feed: null,
    runs: [],
    following: false,
    faults: { remaining: 0, status: 503, requests: 'patches' },
    heldOffline: false,
  }
}

/** An event without its time (given when emitted). */
type Untimed<Event> = Event extends unknown ? Omit<Event, 'at'> : never

/** A client with what the panel uses: the four subscriptions, flush, and an inspector whose data the test sets. */
function fakeClient() {
  const listeners = { events: new Set<(event: InspectorEvent) => void>(), changes: new Set<() => void>() }
  let data = baseInspection()
  const add = (listener: () => void) => {
    const entry = () => {
      listener()
    }
    listeners.changes.add(entry)
    return () => {
      listeners.changes.delete(entry)
    }
  }
  const update = (change: (current: SessionInspection) => SessionInspection) => {
    data = change(data)
    for (const listener of listeners.changes) listener()
  }
  const inspector = {
    inspect: vi.fn(() => ({ ...data, at: Date.now() })),
    subscribe(listener: (event: InspectorEvent) => void) {
      listeners.events.add(listener)
      return () => {
        listeners.events.delete(listener)
      }
    },
    setOffline: vi.fn((offline: boolean) => {
      update((current) => ({ ...current, heldOffline: offline, status: { ...current.status, isOnline: !offline } }))
    }),
    failNext: vi.fn((count: number, status = 503, { requests = 'patches' as const }: { requests?: 'patches' | 'all' } = {}) => {
      update((current) => ({ ...current, faults: { remaining: count, status, requests } }))
    }),
    release: vi.fn(),
    livePages: vi.fn(async () => ['c-page', 'c-other']),
    clearLocalCopy: vi.fn(async () => {}),
  } satisfies SessionInspector
  const client = {
    sessionId: data.sessionId,
    clientId: data.clientId,
    fakeInspector: inspector,
    subscribe: add,
    subscribeStatus: add,
    subscribeRuns: add,
    flush: vi.fn(async () => {}),
  }
  return {
    client: client as unknown as SessionClient,
    inspector,
    flush: client.flush,
    update,
    emit(event: Untimed<InspectorEvent>) {
      for (const listener of listeners.events) listener({ at: Date.now(), ...event })
    },
    listenerCount: () => listeners.events.size + listeners.changes.size,
  }
}

let unmount: (() => void) | undefined
afterEach(() => {
  unmount?.()
  unmount = undefined
  vi.useRealTimers()
  document.body.innerHTML = ''
})

function mount(fake = fakeClient(), options: Parameters<typeof mountPanel>[2] = {}) {
  unmount = mountPanel(fake.client, undefined, options)
  const host = document.querySelector('workflow-session-devtools')!
  const shadow = host.shadowRoot!
  const all = (selector: string) => [...shadow.querySelectorAll<HTMLElement>(selector)]
  const text = (element: Element | null | undefined) => element?.textContent?.replace(/\s+/g, ' ').trim() ?? ''
  const button = (name: string | RegExp) => {
    const found = all('button').find((element) =>
      typeof name === 'string' ? text(element) === name || element.getAttribute('aria-label') === name : name.test(text(element)),
    )
    if (!found) throw new Error(`No button ${String(name)} in: ${all('button').map(text).join(' | ')}`)
    return found
  }
  return {
    fake,
    host,
    shadow,
    all,
    text,
    button,
    toggle: () => shadow.querySelector<HTMLButtonElement>('#sd-toggle')!,
    panel: () => shadow.querySelector<HTMLElement>('[role=dialog]')!,
    tab: (name: string) => all('[role=tab]').find((element) => text(element).startsWith(name))!,
    tabpanel: () => all('[role=tabpanel]').find((element) => !element.hidden)!,
    /** Lets the next animation frame (and the promises before it) run. */
    frame: async () => {
      await vi.advanceTimersByTimeAsync(20)
    },
  }
}

const key = (target: Element, name: string) =>
  target.dispatchEvent(new KeyboardEvent('keydown', { key: name, bubbles: true, composed: true, cancelable: true }))

describe('the panel', () => {
  beforeEach(() => {
    vi.useFakeTimers({
      toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'requestAnimationFrame', 'cancelAnimationFrame', 'Date'],
    })
  })
  afterEach(() => {
    unmount?.()
    unmount = undefined
    // jsdom's own timers started meanwhile (its focus fix-up after a focused element is removed) run out on
    // the fake clock, or later tests' animation frames would wait for a timer that never fires.
    vi.advanceTimersByTime(50)
  })

  it('mounts a fixed host with an open shadow root and its own styles, closed by default', () => {
    const ui = mount()
    expect(ui.host.parentElement).toBe(document.body)
    expect(ui.host.className).toBe('bottom-right theme-system')
    expect(ui.shadow.mode).toBe('open')
    const css = ui.shadow.querySelector('style')!.textContent
    expect(css).toContain('all: initial')
    expect(css).toContain('position: fixed')
    expect(ui.toggle().getAttribute('aria-label')).toBe('Open session devtools')
    expect(ui.toggle().getAttribute('aria-expanded')).toBe('false')
    expect(ui.toggle().getAttribute('aria-controls')).toBe('sd-panel')
    expect(ui.panel().hidden).toBe(true)
    // Nothing of it leaks into the page's DOM.
    expect(document.body.querySelectorAll('button')).toHaveLength(0)
  })

  it('takes its corner, theme, label and initial state from the options', () => {
    const ui = mount(fakeClient(), { position: 'top-left', theme: 'dark', initialOpen: true, buttonLabel: 'sync inspector' })
    expect(ui.host.className).toBe('top-left theme-dark')
    expect(ui.toggle().getAttribute('aria-label')).toBe('Close sync inspector')
    expect(ui.panel().getAttribute('aria-label')).toBe('Sync inspector')
    expect(ui.panel().hidden).toBe(false)
    // Opened at mount, it does not take the app's focus.
    expect(ui.shadow.activeElement).toBeNull()
  })

  it('opens and closes with the button, a non-modal dialog with the focus inside', () => {
    const ui = mount()
    ui.toggle().click()
    expect(ui.toggle().getAttribute('aria-expanded')).toBe('true')
    expect(ui.toggle().getAttribute('aria-label')).toBe('Close session devtools')
    expect(ui.panel().hidden).toBe(false)
    expect(ui.panel().getAttribute('role')).toBe('dialog')
    expect(ui.panel().getAttribute('aria-label')).toBe('Session devtools')
    expect(ui.panel().hasAttribute('aria-modal')).toBe(false)
    expect(ui.shadow.activeElement).toBe(ui.panel())
    ui.toggle().click()
    expect(ui.toggle().getAttribute('aria-expanded')).toBe('false')
    expect(ui.panel().hidden).toBe(true)
  })

  it('closes on Escape and gives the focus back to the button', () => {
    const ui = mount()
    ui.toggle().click()
    const tab = ui.tab('Queue')
    tab.focus()
    key(tab, 'Escape')
    expect(ui.panel().hidden).toBe(true)
    expect(ui.toggle().getAttribute('aria-expanded')).toBe('false')
    expect(ui.shadow.activeElement).toBe(ui.toggle())
  })

  it('is a tablist: arrow keys, Home and End move the selection and the focus', () => {
    const ui = mount()
    ui.toggle().click()
    expect(ui.all('[role=tablist] [role=tab]').map(ui.text)).toEqual(['Variables', 'Queue', 'Timeline', 'Storage', 'Runs'])
    const selected = () => ui.all('[role=tab]').filter((tab) => tab.getAttribute('aria-selected') === 'true')
    expect(selected().map(ui.text)).toEqual(['Variables'])
    expect(ui.tab('Variables').tabIndex).toBe(0)
    expect(ui.tab('Queue').tabIndex).toBe(-1)

    key(ui.tab('Variables'), 'ArrowRight')
    expect(selected().map(ui.text)).toEqual(['Queue'])
    expect(ui.shadow.activeElement).toBe(ui.tab('Queue'))
    expect(ui.tabpanel().id).toBe('sd-tabpanel-queue')
    expect(ui.tabpanel().getAttribute('aria-labelledby')).toBe('sd-tab-queue')
    expect(ui.tab('Queue').getAttribute('aria-controls')).toBe('sd-tabpanel-queue')
    expect(ui.all('[role=tabpanel]').filter((panel) => !panel.hidden)).toHaveLength(1)

    key(ui.tab('Queue'), 'ArrowLeft')
    key(ui.tab('Variables'), 'ArrowLeft') // wraps around
    expect(selected().map(ui.text)).toEqual(['Runs'])
    key(ui.tab('Runs'), 'Home')
    expect(selected().map(ui.text)).toEqual(['Variables'])
    key(ui.tab('Variables'), 'End')
    expect(ui.shadow.activeElement).toBe(ui.tab('Runs'))
    ui.tab('Timeline').click()
    expect(selected().map(ui.text)).toEqual(['Timeline'])
  })

  it('lists the variables, plain ones first then by workflow, with their states, and filters them', () => {
    const ui = mount()
    ui.toggle().click()
    const rows = () => ui.all('[role=tabpanel]:not([hidden]) tbody tr')
    expect(rows().map(ui.text)).toEqual([
      'Variables (3)',
      'email "a@b.c" refused: email is not allowed',
      'password "top-secret-value" v12',
      `notes "${'x'.repeat(78)}… changed here`,
      'Workflow checkout (2)',
      'address {"city":"Paris"} queued',
      'step slot "payment" sending',
    ])
    // The long value is cut, whole in its title; the refused one's title has the code and status.
    expect(rows()[3]!.querySelector('td.value')!.getAttribute('title')).toBe(`"${'x'.repeat(200)}"`)
    expect(rows()[1]!.querySelector('.badge')!.getAttribute('title')).toBe('bad_request (400): email is not allowed')
    expect(rows()[5]!.querySelector('td')!.getAttribute('title')).toBe('wf:checkout:v:address')
    expect(ui.text(ui.tabpanel().querySelector('.toolbar .muted'))).toBe('5 of 5 shown')

    const input = ui.tabpanel().querySelector('input')!
    expect(ui.text(input.closest('label'))).toBe('Filter')
    input.value = 'CHECK'
    input.dispatchEvent(new Event('input', { bubbles: true }))
    expect(rows().map(ui.text)).toEqual(['Workflow checkout (2)', 'address {"city":"Paris"} queued', 'step slot "payment" sending'])
    expect(ui.text(ui.tabpanel().querySelector('.toolbar .muted'))).toBe('2 of 5 shown')
    input.value = 'mail'
    input.dispatchEvent(new Event('input', { bubbles: true }))
    expect(rows().map(ui.text)).toEqual(['Variables (1)', 'email "a@b.c" refused: email is not allowed'])
    input.value = 'nope'
    input.dispatchEvent(new Event('input', { bubbles: true }))
    expect(ui.text(ui.tabpanel().querySelector('.empty'))).toBe('No variable matches “nope”.')
  })

  it('draws at most 500 variables of a large session, and the filter finds the others', () => {
    const fake = fakeClient()
    const many = Array.from({ length: 1200 }, (_, index) => ({
      key: `v${String(index).padStart(4, '0')}`,
      value: index,
      state: 'confirmed' as const,
    }))
    fake.update((current) => ({ ...current, variables: many }))
    const ui = mount(fake)
    ui.toggle().click()
    const rows = () => ui.all('[role=tabpanel]:not([hidden]) tbody tr')
    expect(rows()).toHaveLength(501) // the group's heading and 500 variables
    expect(ui.text(rows()[0])).toBe('Variables (1200)')
    expect(ui.text(ui.tabpanel().querySelector('.toolbar .muted'))).toBe('500 of 1200 shown (the first 500: filter to find the others)')
    const input = ui.tabpanel().querySelector('input')!
    input.value = 'v1199'
    input.dispatchEvent(new Event('input', { bubbles: true }))
    expect(rows().map(ui.text)).toEqual(['Variables (1)', 'v1199 1199 v12'])
    expect(ui.text(ui.tabpanel().querySelector('.toolbar .muted'))).toBe('1 of 1200 shown')
  })

  it('takes the actions through the inspector: offline, fail next with the chosen count and status, flush', async () => {
    const ui = mount()
    ui.toggle().click()
    const offline = ui.button('Work offline')
    expect(offline.getAttribute('aria-pressed')).toBe('false')
    offline.click()
    expect(ui.fake.inspector.setOffline).toHaveBeenCalledWith(true)
    expect(ui.button('Work offline').getAttribute('aria-pressed')).toBe('true')
    expect(ui.text(ui.shadow.querySelector('.pill'))).toBe('Offline (0 unsaved)')
    ui.button('Work offline').click()
    expect(ui.fake.inspector.setOffline).toHaveBeenLastCalledWith(false)

    const count = ui.shadow.querySelector<HTMLInputElement>('input[type=number]')!
    const status = ui.shadow.querySelector<HTMLSelectElement>('select')!
    expect(count.value).toBe('3')
    expect(status.value).toBe('503')
    expect([...status.options].map((option) => option.value)).toEqual(['503', '500', '429', '401', '400', '413'])
    count.value = '5'
    count.dispatchEvent(new Event('change', { bubbles: true }))
    status.value = '429'
    status.dispatchEvent(new Event('change', { bubbles: true }))
    ui.button('Fail next').click()
    expect(ui.fake.inspector.failNext).toHaveBeenCalledWith(5, 429, { requests: 'patches' })
    expect(ui.text(ui.shadow.querySelector('.actions .badge.err'))).toBe('5 to fail (429, patches)')
    // Out of range: held to 1–20; any request, not only patches.
    count.value = '99'
    count.dispatchEvent(new Event('change', { bubbles: true }))
    const requests = ui.shadow.querySelectorAll<HTMLSelectElement>('select')[1]!
    expect([...requests.options].map((option) => option.value)).toEqual(['patches', 'all'])
    requests.value = 'all'
    requests.dispatchEvent(new Event('change', { bubbles: true }))
    ui.button('Fail next').click()
    expect(ui.fake.inspector.failNext).toHaveBeenLastCalledWith(20, 429, { requests: 'all' })

    ui.button('Flush now').click()
    expect(ui.fake.flush).toHaveBeenCalledOnce()
    await ui.frame()
    expect(ui.text(ui.shadow.querySelector('[role=status]'))).toBe('Flushed: every change is on the server')
    ui.fake.flush.mockRejectedValueOnce(new SessionError('offline', 'Offline: the changes are kept on this device'))
    ui.button('Flush now').click()
    await ui.frame()
    expect(ui.text(ui.shadow.querySelector('[role=status]'))).toBe('Flush failed: Offline: the changes are kept on this device')
  })

  it('clears the device copy only on a second click within 5 s', async () => {
    const ui = mount()
    ui.toggle().click()
    ui.button('Clear device copy').click()
    expect(ui.fake.inspector.clearLocalCopy).not.toHaveBeenCalled()
    await vi.advanceTimersByTimeAsync(5100)
    expect(() => ui.button('Really clear?')).toThrow() // asked too long ago
    ui.button('Clear device copy').click()
    ui.button('Really clear?').click()
    expect(ui.fake.inspector.clearLocalCopy).toHaveBeenCalledOnce()
    await ui.frame()
    expect(ui.text(ui.shadow.querySelector('[role=status]'))).toBe('Device copy cleared')
  })

  it('copies the report without values, or shows it to copy by hand when the clipboard refuses', async () => {
    const writeText = vi.fn<(text: string) => Promise<void>>(async () => {})
    Object.defineProperty(navigator, 'clipboard', { value: { writeText }, configurable: true })
    try {
      const ui = mount()
      ui.toggle().click()
      ui.button('Copy report').click()
      await ui.frame()
      expect(writeText).toHaveBeenCalledOnce()
      const copied = JSON.parse(writeText.mock.calls[0]![0])
      expect(copied).toMatchObject({ format: 'workflow-session-devtools-report', sessionId: 'session-0123456789abcdef', values: false })
      expect(JSON.stringify(copied)).not.toContain(SECRET)
      expect(ui.text(ui.shadow.querySelector('[role=status]'))).toBe('Copied')

      const values = ui
        .all('input[type=checkbox]')
        .find((input) => ui.text(input.closest('label')) === 'include values') as HTMLInputElement
      expect(values.checked).toBe(false)
      values.click()
      writeText.mockRejectedValueOnce(new Error('denied'))
      ui.button('Copy report').click()
      await ui.frame()
      const textarea = ui.shadow.querySelector('textarea')!
      expect(textarea.readOnly).toBe(true)
      expect(textarea.value).toContain(SECRET) // asked for values this time
      expect(ui.text(ui.shadow.querySelector('[role=status]'))).toMatch(/report is below/)
    } finally {
      Reflect.deleteProperty(navigator, 'clipboard')
    }
  })

  it('renders at most once a frame whatever the number of changes, and nothing while closed', async () => {
    const ui = mount()
    for (let i = 0; i < 20; i++) ui.fake.emit({ type: 'write', key: `k${i}` })
    await ui.frame()
    expect(ui.fake.inspector.inspect).not.toHaveBeenCalled()
    ui.toggle().click()
    ui.fake.inspector.inspect.mockClear()
    for (let i = 0; i < 20; i++) {
      ui.fake.emit({ type: 'write', key: `k${i}` })
      ui.fake.update((current) => ({ ...current, status: { ...current.status, version: 12 + i } }))
    }
    expect(ui.fake.inspector.inspect).not.toHaveBeenCalled()
    await ui.frame()
    expect(ui.fake.inspector.inspect).toHaveBeenCalledOnce()
    expect(ui.text(ui.shadow.querySelector('.title'))).toContain('v31')
    // And once a second while open, for the countdowns.
    ui.fake.inspector.inspect.mockClear()
    await vi.advanceTimersByTimeAsync(3000)
    expect(ui.fake.inspector.inspect).toHaveBeenCalledTimes(3)
  })

  it('shows the timeline: events heard since mount, offline as a band, and tells a screen reader only what matters', async () => {
    const fake = fakeClient()
    const ui = mount(fake)
    fake.emit({ type: 'write', key: 'before-open' }) // heard while closed
    ui.toggle().click()
    ui.tab('Timeline').click()
    fake.emit({ type: 'write', key: 'email' })
    fake.emit({ type: 'send', seq: 1, keys: ['email'], bytes: 40, keepalive: false })
    fake.emit({ type: 'confirmed', seq: 1, version: 13 })
    await ui.frame()
    const live = ui.shadow.querySelector('[aria-live=polite]')!
    expect(ui.text(live)).toBe('Confirmed, now version 13')
    const rows = () => ui.all('.events tbody tr').map(ui.text)
    expect(rows()).toEqual([
      expect.stringMatching(/ confirmed #1 → v13$/),
      expect.stringMatching(/ send #1 email \(40 B\)$/),
      expect.stringMatching(/ write email$/),
      expect.stringMatching(/ write before-open$/),
    ])
    expect(ui.shadow.querySelectorAll('svg.strip .t-confirmed')).toHaveLength(1)
    expect(ui.shadow.querySelectorAll('svg.strip .t-send')).toHaveLength(1)
    expect(ui.shadow.querySelectorAll('svg.strip .t-write')).toHaveLength(2)
    expect(ui.shadow.querySelector('svg.strip')!.getAttribute('aria-label')).toMatch(/2 write, 1 send, 1 ok/)

    // Offline now: a band up to now, announced after the quiet interval, and never the writes.
    await vi.advanceTimersByTimeAsync(1000)
    fake.emit({ type: 'offline' })
    fake.update((current) => ({ ...current, status: { ...current.status, isOnline: false } }))
    fake.emit({ type: 'failed', seq: 2, error: new SessionError('offline', 'offline', undefined, true), retryAt: null })
    fake.emit({ type: 'write', key: 'typed-offline' })
    await ui.frame()
    expect(ui.text(live)).toBe('Confirmed, now version 13') // not yet: one announcement per 3 s
    expect(ui.shadow.querySelectorAll('svg.strip .band')).toHaveLength(1)
    expect(ui.shadow.querySelectorAll('svg.strip .t-error')).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(2000)
    expect(ui.text(live)).toBe('Offline. Send failed: offline')
  })

  it('shows the queue with its closed tabs, errors and countdowns, and says why it is empty', () => {
    const fake = fakeClient()
    const ui = mount(fake, { initialOpen: true })
    ui.tab('Queue').click()
    expect(ui.text(ui.tabpanel())).toBe('Nothing queued: every change is on the server')
    fake.update((current) => ({ ...current, status: { ...current.status, isDirty: true, pendingKeys: ['email', 'notes'] } }))
    ui.tab('Queue').click() // renders now
    expect(ui.text(ui.tabpanel())).toBe('Changes waiting for the debounce: email, notes')
    fake.update((current) => ({
      ...current,
      queue: [
        { seq: 4, clientId: 'c-closed-tab', keys: ['a', 'b'], bytes: 77, attempts: 0, lastError: null, nextRetryAt: null, sending: true },
        {
          seq: 5,
          clientId: 'c-page',
          keys: ['c'],
          bytes: 30,
          attempts: 2,
          lastError: new SessionError('unavailable', 'down', 503, true),
          nextRetryAt: Date.now() + 2300,
          sending: false,
        },
      ],
    }))
    ui.tab('Queue').click()
    expect(ui.text(ui.tab('Queue'))).toBe('Queue (2)')
    expect(ui.all('[role=tabpanel]:not([hidden]) tbody tr').map(ui.text)).toEqual([
      '4 c-closed… closed tab a, b 77 0 — — sending',
      '5 c-page c 30 2 unavailable (503) in 2.3 s',
    ])
  })

  it('shows the storage, the open pages (checking… first) and no feed without failing', async () => {
    const fake = fakeClient()
    let answer!: (pages: string[]) => void
    fake.inspector.livePages.mockImplementationOnce(() => new Promise<string[]>((resolve) => (answer = resolve)))
    fake.update((current) => ({
      ...current,
      localCopy: {
        storage: 'memory',
        persistent: false,
        lastWrite: { at: Date.now() - 2000, ok: true },
        leftByPages: [
          { clientId: 'c-old', patches: 2, takenOver: true },
          { clientId: 'c-open', patches: 1, takenOver: false },
        ],
      },
    }))
    const ui = mount(fake, { initialOpen: true })
    ui.tab('Storage').click()
    const panelText = () => ui.text(ui.tabpanel())
    expect(panelText()).toContain('checking…')
    expect(panelText()).toContain('Not persistent')
    expect(panelText()).toContain('c-old: 2 patches, taken over')
    expect(panelText()).toContain('c-open: 1 patch, left to an open tab')
    expect(panelText()).toContain('Not following the change stream (add liveUpdates())')
    answer(['c-page', 'c-other'])
    await ui.frame()
    expect(ui.all('[role=tabpanel]:not([hidden]) li').map(ui.text)).toContain('c-page this page')
    expect(panelText()).not.toContain('checking…')

    fake.update((current) => ({
      ...current,
      feed: { connected: false, connects: 3, lastEventVersion: 12, lastEventAt: Date.now() - 4000, lastError: 'stream ended' },
    }))
    await ui.frame()
    expect(panelText()).toContain('disconnected')
    expect(panelText()).toContain('v12 (4.0 s ago)')
    expect(panelText()).toContain('stream ended')

    ui.tab('Runs').click()
    expect(panelText()).toMatch(/^No runs yet/)
    const started = new Date(Date.now() - 5000).toISOString()
    fake.update((current) => ({
      ...current,
      runs: [
        {
          runId: 'r1',
          step: 'register',
          status: 'running',
          input: null,
          progress: { done: 3 },
          output: null,
          error: null,
          startedAt: started,
          finishedAt: null,
          heartbeatAt: started,
          readVersion: 1,
          version: null,
          rev: 2,
        },
        {
          runId: 'r0',
          step: 'charge',
          status: 'failed',
          input: null,
          progress: null,
          output: null,
          error: { code: 'step_failed', message: 'card declined' },
          startedAt: started,
          finishedAt: new Date(Date.now() - 4500).toISOString(),
          heartbeatAt: started,
          readVersion: 1,
          version: null,
          rev: 3,
        },
      ],
    }))
    await ui.frame()
    expect(ui.all('[role=tabpanel]:not([hidden]) tbody tr').map(ui.text)).toEqual([
      'register running {"done":3} 5.0 s so far —',
      'charge failed — 0.5 s step_failed: card declined',
    ])
  })

  it('unmounts: the host is gone, every listener removed, no timer left', async () => {
    const fake = fakeClient()
    const ui = mount(fake, { initialOpen: true })
    ui.button('Clear device copy').click() // arms a 5 s timer
    fake.emit({ type: 'confirmed', seq: 1, version: 13 }) // a frame and an announcement
    expect(fake.listenerCount()).toBe(4)
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    const renders = fake.inspector.inspect.mock.calls.length
    unmount!()
    unmount = undefined
    expect(document.querySelector('workflow-session-devtools')).toBeNull()
    expect(fake.listenerCount()).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
    // A change after that renders nothing and throws nothing.
    fake.update((current) => current)
    await vi.advanceTimersByTimeAsync(2000)
    expect(fake.inspector.inspect).toHaveBeenCalledTimes(renders)
  })
})

describe('the panel on a real client', () => {
  it('shows a write as changed here, then confirmed once flushed', async () => {
    const handler = createSessionHandler({ store: memoryStore(), onError: () => {} })
    const client = createSessionClient({
      endpoint: 'http://localhost/api/session',
      sessionId: 'devtools-panel-1',
      storage: memoryLocalCopy(),
      locks: null,
      fetch: async (input, init) => handler(new Request(input, init)),
    })
    try {
      await client.start()
      unmount = mountPanel(client, undefined, { initialOpen: true })
      const shadow = document.querySelector('workflow-session-devtools')!.shadowRoot!
      const rowText = () =>
        [...shadow.querySelectorAll('[role=tabpanel]:not([hidden]) tbody tr')].map((row) => row.textContent.replace(/\s+/g, ' ').trim())
      client.set('email', 'a@b.c')
      client.set('wf:signup:step', 'details')
      await vi.waitFor(() =>
        expect(rowText()).toEqual([
          'Variables (1)',
          'email "a@b.c" changed here',
          'Workflow signup (1)',
          'step slot "details" changed here',
        ]),
      )
      ;[...shadow.querySelectorAll('button')].find((button) => button.textContent.trim() === 'Flush now')!.click()
      await vi.waitFor(() =>
        expect(rowText()).toEqual([
          'Variables (1)',
          'email "a@b.c" v1',
          'Workflow signup (2)',
          expect.stringMatching(/^at slot "[0-9T:.Z-]+" v1$/), // the server's time of the workflow's change
          'step slot "details" v1',
        ]),
      )
      expect(shadow.querySelector('.pill')!.textContent.trim()).toBe('Synced')
    } finally {
      unmount?.()
      unmount = undefined
      await client.stop()
    }
  })
})
