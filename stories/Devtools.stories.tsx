import type { Meta, StoryObj } from '@storybook/react-vite'
import { http, HttpResponse } from 'msw'
import { expect, userEvent, waitFor, within } from 'storybook/test'
import { SessionDevtools } from 'workflow-session/devtools'
import type { Step } from 'workflow-session/server'
import { LongStep } from '../demo/src/LongStep.js'
import { SignupForm } from '../demo/src/SignupForm.js'
import { SyncBadge } from '../demo/src/SyncBadge.js'
import { MockSession, type MockSessionProps } from './MockSession.js'

/** A patch to one session (not a run): `POST …/api/session/{id}`. */
const PATCH = /\/api\/session\/[^/?]+(\?.*)?$/

/** The element SessionDevtools appends to document.body; the panel is in its open shadow root. */
const HOST = 'workflow-session-devtools'

function Screen({ form = 'signup', ...props }: Omit<MockSessionProps, 'children'> & { form?: 'signup' | 'report' }) {
  return (
    <MockSession {...props}>
      <SyncBadge />
      {form === 'signup' ? <SignupForm /> : <LongStep />}
      <SessionDevtools enabled initialOpen />
    </MockSession>
  )
}

const meta = {
  title: 'Session/Devtools',
  component: Screen,
  // The panel is fixed to a corner of document.body: on the Docs page each story gets an iframe
  // of its own, or their five open panels would pile up in one corner of the page.
  parameters: { docs: { story: { inline: false, height: '560px' } } },
} satisfies Meta<typeof Screen>
export default meta
type Story = StoryObj<typeof meta>

const textOf = (element: Element | null | undefined) => element?.textContent.replace(/\s+/g, ' ').trim() ?? ''

/** A table row as the texts of its cells. */
const cellsOf = (row: HTMLTableRowElement) => [...row.cells].map(textOf)

/** The devtools of the story, once mounted and open: queries within its shadow root, and what its tables show. */
async function devtools() {
  const host = await waitFor(() => {
    const found = document.querySelector(HOST)
    if (!found?.shadowRoot) throw new Error(`No <${HOST}> with a shadow root on the page`)
    return found
  })
  const shadow = host.shadowRoot!
  const panel = within(shadow as unknown as HTMLElement)
  await expect(panel.getByRole('dialog', { name: 'Session devtools' })).toBeVisible()
  await expect(panel.getByRole('button', { name: 'Close session devtools' })).toHaveAttribute('aria-expanded', 'true')
  /** The rows of the table of the tab shown (the other tab panels are hidden, so not in the accessibility tree). */
  const rows = () => [...panel.getByRole('tabpanel').querySelectorAll('tbody tr')] as HTMLTableRowElement[]
  return {
    shadow,
    panel,
    rows,
    rowTexts: () => rows().map(textOf),
    pill: () => textOf(shadow.querySelector('.pill')),
    /** What the last action said (its role="status" line). */
    said: () => textOf(panel.getByRole('status')),
    button: (name: string) => panel.getByRole('button', { name }),
    async openTab(name: 'Variables' | 'Queue' | 'Timeline' | 'Storage' | 'Runs') {
      const tab = panel.getByRole('tab', { name: new RegExp(`^${name}`) })
      await userEvent.click(tab)
      await expect(tab).toHaveAttribute('aria-selected', 'true')
    },
  }
}

/** Nothing left of an earlier story: the previous story's panel unmounted with it, so this story's is the only one. */
const expectOnePanel = () => expect(document.querySelectorAll(HOST)).toHaveLength(1)

/** Healthy: a value typed shows "changed here", then confirmed at the session's version; the pill says Synced. */
export const Healthy: Story = {
  args: { debounceMs: 800 },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    const ui = await devtools()
    await waitFor(() => expect(ui.pill()).toBe('Synced'))
    await expect(ui.panel.getByRole('tab', { name: 'Variables' })).toHaveAttribute('aria-selected', 'true')
    await expect(ui.button('Work offline')).toHaveAttribute('aria-pressed', 'false')

    await userEvent.type(canvas.getByLabelText('Email'), 'ada@example.com')
    await waitFor(() => expect(ui.rowTexts()).toContain('email "ada@example.com" changed here'))
    await waitFor(
      () =>
        expect(ui.rowTexts()).toEqual(
          expect.arrayContaining([
            expect.stringMatching(/^Workflow signup \(\d+\)$/),
            expect.stringMatching(/^email "ada@example\.com" v\d+$/),
          ]),
        ),
      { timeout: 3000 },
    )
    await waitFor(() => expect(ui.pill()).toBe('Synced'))
    // The badge is the version the header shows: the server's snapshot this page is based on.
    const emailRow = ui.rows().find((row) => textOf(row).startsWith('email '))!
    const version = textOf(emailRow.querySelector('.badge.ok'))
    await expect(textOf(ui.shadow.querySelector('.title'))).toContain(` ${version} `)
    await expect(emailRow.querySelector('.badge.ok')).toHaveAttribute(
      'title',
      `Confirmed by the server (session version ${version.slice(1)})`,
    )
    await expect(within(canvasElement).getByRole('status')).toHaveTextContent('Saved')

    await ui.openTab('Queue')
    await expect(textOf(ui.panel.getByRole('tabpanel'))).toBe('Nothing queued: every change is on the server')
    await expectOnePanel()
  },
}

/** Offline with a queue: "Work offline", then two edits each flushed into a patch of its own, which wait in the queue. */
export const OfflineWithAQueue: Story = {
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    const ui = await devtools()
    await waitFor(() => expect(ui.pill()).toBe('Synced'))

    await userEvent.click(ui.button('Work offline'))
    await expect(ui.button('Work offline')).toHaveAttribute('aria-pressed', 'true')
    await waitFor(() => expect(ui.pill()).toBe('Offline (0 unsaved)'))

    const offlineFlush = 'Flush failed: Offline: changes are kept and will be sent when back online'
    await userEvent.type(canvas.getByLabelText('Email'), 'ada@example.com')
    await userEvent.click(ui.button('Flush now'))
    await waitFor(() => expect(ui.said()).toBe(offlineFlush))
    await userEvent.type(canvas.getByLabelText('Name'), 'Ada')
    await userEvent.click(ui.button('Flush now'))
    await waitFor(() => expect(ui.said()).toBe(offlineFlush))
    // Past the debounce: offline, nothing leaves.
    await new Promise((resolve) => setTimeout(resolve, 600))

    await ui.openTab('Queue')
    await waitFor(() => expect(ui.panel.getByRole('tab', { name: /^Queue/ })).toHaveTextContent('Queue (2)'))
    // Seq, page, keys, bytes, attempts, last error, next retry, sending: two patches never sent, so never tried.
    const queued = (key: string): unknown[] => [
      expect.stringMatching(/^\d+$/),
      expect.stringMatching(/^c-/),
      key,
      expect.stringMatching(/^\d+$/),
      '0',
      '—',
      '—',
      '',
    ]
    const rows = ui.rows().map(cellsOf)
    await expect(rows).toEqual([queued('wf:signup:v:email'), queued('wf:signup:v:name')])
    await expect(Number(rows[1]![0])).toBe(Number(rows[0]![0]) + 1)
    await expect(ui.pill()).toBe('Offline (2 unsaved)')
    await expect(canvas.getByRole('status')).toHaveTextContent('Offline — changes kept')

    await ui.openTab('Variables')
    await expect(ui.rowTexts()).toEqual(expect.arrayContaining(['email "ada@example.com" queued', 'name "Ada" queued']))
    await expectOnePanel()
  },
}

/** Failing with retries: every patch is answered 503; the queue shows the attempts, the last error and when it is tried again. */
export const FailingWithRetries: Story = {
  args: {
    faults: [http.post(PATCH, () => HttpResponse.json({ error: { code: 'unavailable', message: 'server unavailable' } }, { status: 503 }))],
  },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    const ui = await devtools()
    await waitFor(() => expect(ui.pill()).toBe('Synced'))
    await userEvent.type(canvas.getByLabelText('Email'), 'grace@example.com')
    await ui.openTab('Queue')
    // Seq, page, keys, bytes, attempts (at least one), last error, next retry (a countdown), sending.
    await waitFor(
      () =>
        expect(ui.rows().map(cellsOf)).toEqual([
          [
            expect.stringMatching(/^\d+$/),
            expect.stringMatching(/^c-/),
            'wf:signup:v:email',
            expect.stringMatching(/^\d+$/),
            expect.stringMatching(/^[1-9]\d*$/),
            'unavailable (503)',
            expect.stringMatching(/^in \d+(\.\d)? s$/),
            '',
          ],
        ]),
      { timeout: 4000 },
    )
    await expect(ui.rows()[0]!.querySelector('.error-text')).toHaveAttribute('title', 'server unavailable')
    await expect(ui.panel.getByRole('tab', { name: /^Queue/ })).toHaveTextContent('Queue (1)')
    await expect(ui.pill()).toBe('Error: unavailable')
    await expect(canvas.getByRole('status')).toHaveTextContent("Couldn't save (server unavailable). Retrying…")
    // It keeps trying: the attempts go on growing.
    const attemptsNow = Number(textOf(ui.rows()[0]!.cells[4]))
    await waitFor(() => expect(Number(textOf(ui.rows()[0]!.cells[4]))).toBeGreaterThan(attemptsNow), { timeout: 3000 })
    await expectOnePanel()
  },
}

/** A refused variable: the server refuses the patch with the name for good (400); the name shows "refused" with the server's reason. */
export const RefusedVariable: Story = {
  args: {
    faults: [
      http.post(PATCH, async ({ request }) => {
        if (!(await request.clone().text()).includes('"wf:signup:v:name"')) return undefined
        return HttpResponse.json({ error: { code: 'invalid_patch', message: 'A name may not contain digits' } }, { status: 400 })
      }),
    ],
  },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    const ui = await devtools()
    await waitFor(() => expect(ui.pill()).toBe('Synced'))
    await userEvent.type(canvas.getByLabelText('Email'), 'ada@example.com')
    await waitFor(() => expect(ui.rowTexts()).toEqual(expect.arrayContaining([expect.stringMatching(/^email "ada@example\.com" v\d+$/)])), {
      timeout: 3000,
    })

    await userEvent.type(canvas.getByLabelText('Name'), 'R2D2')
    await waitFor(() => expect(ui.rowTexts()).toContain('name "R2D2" refused: A name may not contain digits'), { timeout: 3000 })
    const nameRow = ui.rows().find((row) => textOf(row).startsWith('name '))!
    await expect(nameRow.querySelector('.badge.err')).toHaveAttribute('title', 'invalid_patch (400): A name may not contain digits')
    // The email stays confirmed; the name stays on screen and in the panel, and is not resent.
    await expect(ui.rowTexts()).toEqual(expect.arrayContaining([expect.stringMatching(/^email "ada@example\.com" v\d+$/)]))
    await expect(canvas.getByLabelText('Name')).toHaveValue('R2D2')
    await expect(ui.pill()).toBe('Error: invalid_patch')
    await ui.openTab('Queue')
    await expect(textOf(ui.panel.getByRole('tabpanel'))).toBe('Nothing queued: every change is on the server')
    await expectOnePanel()
  },
}

/** Ends the report steps still running when their story unmounts (the server runs in this page). */
let storyEnded = new AbortController()

/** A report step that reports progress every 100 ms for `ms`, and stops when its run is cancelled or its story ends. */
const reportFor =
  (ms: number): Step =>
  async ({ progress, signal }) => {
    const ended = storyEnded.signal
    const started = Date.now()
    while (Date.now() - started < ms && !signal.aborted && !ended.aborted) {
      progress({ done: Math.floor((Date.now() - started) / (ms / 10)), of: 10 })
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    return { output: { message: 'Report ready' } }
  }

/** A run in progress: a 10 s step started from the form shows in the Runs tab as running, with its progress. */
export const RunInProgress: Story = {
  args: { form: 'report', steps: { report: reportFor(10_000) } },
  beforeEach: () => {
    const ended = new AbortController()
    storyEnded = ended
    return () => {
      ended.abort()
    }
  },
  play: async ({ canvasElement }) => {
    const canvas = within(canvasElement)
    const ui = await devtools()
    await ui.openTab('Runs')
    await expect(textOf(ui.panel.getByRole('tabpanel'))).toMatch(/^No runs yet/)

    await userEvent.click(canvas.getByRole('button', { name: 'Make a report' }))
    // Step, status, progress (moved past its start), duration so far, no error.
    await waitFor(
      () =>
        expect(ui.rows().map(cellsOf)).toEqual([
          [
            'report',
            'running',
            expect.stringMatching(/^\{"done":([1-9]|10),"of":10\}$/),
            expect.stringMatching(/^\d+(\.\d)? s so far$/),
            '—',
          ],
        ]),
      { timeout: 5000 },
    )
    await expect(ui.rows()[0]!.querySelector('.badge.info')).toHaveTextContent('running')
    await expect(canvas.getByRole('button', { name: 'Cancel' })).toBeEnabled()
    await expectOnePanel()
  },
}
