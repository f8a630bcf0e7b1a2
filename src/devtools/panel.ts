import { html, nothing, render, type TemplateResult } from 'lit-html'
import { live } from 'lit-html/directives/live.js'
import type { SessionClient } from '../client/types.js'
import { errorCode, shortId } from './format.js'
import { type InspectorEvent, inspectSession, type SessionInspection } from './inspector.js'
import { devtoolsReport } from './report.js'
import { devtoolsStyles } from './styles.js'
import { createAnnouncer, eventList, RingBuffer, timelineStrip } from './timeline.js'
import { type LivePagesState, queueView, runsView, storageView, variablesView } from './views.js'

export interface DevtoolsOptions {
  /** The corner the button sits in; default `'bottom-right'`. */
  position?: 'bottom-right' | 'bottom-left' | 'top-right' | 'top-left'
  /** Open the panel at once; default false. */
  initialOpen?: boolean
  /** Default `'system'`: dark when the system is. */
  theme?: 'light' | 'dark' | 'system'
  /** What the devtools are called: the button reads "Open …"/"Close …", the panel is named by it; default `'session devtools'`. */
  buttonLabel?: string
}

const TABS = [
  { id: 'variables', label: 'Variables' },
  { id: 'queue', label: 'Queue' },
  { id: 'timeline', label: 'Timeline' },
  { id: 'storage', label: 'Storage' },
  { id: 'runs', label: 'Runs' },
] as const

type Tab = (typeof TABS)[number]['id']

/** The statuses "Fail next" offers, the first by default. */
const FAULT_STATUSES = [503, 500, 429, 401, 400, 413]

/** Events the panel keeps for its timeline and its report (heard from mount on, open or not). */
const KEPT_EVENTS = 500

/** How long "Really clear?" waits for its second click. */
const CONFIRM_MS = 5000

/** How long the outcome of an action shows. */
const MESSAGE_MS = 4000

/**
 * Draws the panel on the page at once (`mountSessionDevtools` in mount.ts loads this module
 * first): a round button in a corner that opens a panel of what `client` holds (variables,
 * queue, timeline, storage, runs) and actions that provoke the hard cases (offline, failing
 * requests, a cleared device copy). Everything lives in a shadow root of its own host element,
 * appended to `element` (default `document.body`), so the app's CSS and the panel's never meet.
 * Returns the function that removes it all and stops listening.
 */
export function mountPanel(client: SessionClient, element: HTMLElement = document.body, options: DevtoolsOptions = {}): () => void {
  const name = options.buttonLabel ?? 'session devtools'
  const dialogName = name.charAt(0).toUpperCase() + name.slice(1)
  const inspector = inspectSession(client)

  const host = document.createElement('workflow-session-devtools')
  host.className = `${options.position ?? 'bottom-right'} theme-${options.theme ?? 'system'}`
  const shadow = host.attachShadow({ mode: 'open' })
  const style = document.createElement('style')
  style.textContent = devtoolsStyles
  const container = document.createElement('div')
  container.className = 'root'
  shadow.append(style, container)
  element.append(host)

  const mountedAt = Date.now()
  const events = new RingBuffer<InspectorEvent>(KEPT_EVENTS)
  const state = {
    open: false,
    tab: 'variables' as Tab,
    filter: '',
    failCount: 3,
    failStatus: FAULT_STATUSES[0]!,
    /** Which requests "Fail next" hits. */
    failRequests: 'patches' as 'patches' | 'all',
    includeValues: false,
    flushing: false,
    /** Until when a second click on "Really clear?" clears the device copy (0: not asked). */
    clearArmedUntil: 0,
    /** The last action's outcome, in the role="status" element. */
    message: { text: '', error: false },
    /** The report, shown to copy by hand when the clipboard would not take it. */
    reportText: null as string | null,
    pages: { checking: false, pages: null, error: null } as LivePagesState,
  }
  let unmounted = false

  // Rendering: at once after the person's own actions (focus moves right after), else at most once a frame.
  let cancelFrame: (() => void) | null = null
  const draw = () => {
    cancelFrame?.()
    cancelFrame = null
    if (!unmounted) render(view(), container)
  }
  const schedule = () => {
    if (cancelFrame === null && !unmounted && state.open) cancelFrame = nextFrame(draw)
  }
  // Once a second while open: countdowns, durations and "ago" move on.
  let ticker: ReturnType<typeof setInterval> | undefined
  let clearTimer: ReturnType<typeof setTimeout> | undefined
  const announcer = createAnnouncer(schedule)

  const unsubscribe = [
    inspector.subscribe((event) => {
      events.push(event)
      if (state.open) announcer.note(event)
      schedule()
    }),
    client.subscribe(schedule),
    client.subscribeStatus(schedule),
    client.subscribeRuns(schedule),
  ]

  const focusOn = (id: string) => shadow.getElementById(id)?.focus()

  function setOpen(open: boolean, focus: 'panel' | 'button' | null) {
    state.open = open
    clearInterval(ticker)
    ticker = open ? setInterval(schedule, 1000) : undefined
    if (open && state.tab === 'storage') checkPages()
    draw()
    if (focus) focusOn(focus === 'panel' ? 'sd-panel' : 'sd-toggle')
  }

  function selectTab(tab: Tab, focus = false) {
    state.tab = tab
    if (tab === 'storage') checkPages()
    draw()
    if (focus) focusOn(`sd-tab-${tab}`)
  }

  let pagesAsked = 0
  function checkPages() {
    const ask = ++pagesAsked
    state.pages = { ...state.pages, checking: true, error: null }
    inspector.livePages().then(
      (pages) => {
        if (ask === pagesAsked) state.pages = { checking: false, pages, error: null }
        schedule()
      },
      (error: unknown) => {
        if (ask === pagesAsked) state.pages = { checking: false, pages: null, error: messageOf(error) }
        schedule()
      },
    )
  }

  /** The outcome of an action, shown for a while (an error until the next action). */
  let messageTimer: ReturnType<typeof setTimeout> | undefined
  const say = (text: string, error = false) => {
    if (unmounted) return
    state.message = { text, error }
    clearTimeout(messageTimer)
    if (!error)
      messageTimer = setTimeout(() => {
        state.message = { text: '', error: false }
        schedule()
      }, MESSAGE_MS)
  }

  const actions = {
    flush: async () => {
      state.flushing = true
      say('Flushing…')
      draw()
      try {
        await client.flush()
        say('Flushed: every change is on the server')
      } catch (error) {
        say(`Flush failed: ${messageOf(error)}`, true)
      }
      state.flushing = false
      schedule()
    },
    toggleOffline: () => {
      inspector.setOffline(!inspector.inspect().heldOffline)
      draw()
    },
    failNext: () => {
      inspector.failNext(state.failCount, state.failStatus, { requests: state.failRequests })
      const what = state.failRequests === 'all' ? 'request' : 'patch request'
      say(`The next ${state.failCount} ${what}${state.failCount === 1 ? '' : 's'} fail with ${state.failStatus}`)
      draw()
    },
    clearLocalCopy: async () => {
      clearTimeout(clearTimer)
      if (Date.now() >= state.clearArmedUntil) {
        // First click: ask again, for a few seconds.
        state.clearArmedUntil = Date.now() + CONFIRM_MS
        clearTimer = setTimeout(() => {
          state.clearArmedUntil = 0
          schedule()
        }, CONFIRM_MS)
        draw()
        return
      }
      state.clearArmedUntil = 0
      draw()
      try {
        await inspector.clearLocalCopy()
        say('Device copy cleared')
      } catch (error) {
        say(`Could not clear the device copy: ${messageOf(error)}`, true)
      }
      schedule()
    },
    copyReport: async () => {
      const report = devtoolsReport(inspector.inspect(), events.toArray(), { values: state.includeValues })
      const text = JSON.stringify(report, null, 2)
      try {
        const clipboard = (globalThis.navigator as Navigator | undefined)?.clipboard
        if (!clipboard) throw new Error('no clipboard')
        await clipboard.writeText(text)
        state.reportText = null
        say('Copied')
      } catch {
        state.reportText = text
        say('The clipboard refused: the report is below, to copy by hand')
      }
      draw()
    },
  }

  function onKeydown(event: KeyboardEvent) {
    if (event.key !== 'Escape' || !state.open) return
    event.stopPropagation()
    setOpen(false, 'button')
  }

  function onTabKey(event: KeyboardEvent) {
    const index = TABS.findIndex((tab) => tab.id === state.tab)
    const moves: Record<string, number> = { ArrowRight: index + 1, ArrowLeft: index - 1, Home: 0, End: TABS.length - 1 }
    const next = moves[event.key]
    if (next === undefined) return
    event.preventDefault()
    selectTab(TABS[(next + TABS.length) % TABS.length]!.id, true)
  }

  function view(): TemplateResult {
    const label = `${state.open ? 'Close' : 'Open'} ${name}`
    return html`
      <button
        id="sd-toggle"
        class="toggle"
        type="button"
        aria-label=${label}
        title=${label}
        aria-expanded=${String(state.open)}
        aria-controls="sd-panel"
        @click=${() => {
          setOpen(!state.open, state.open ? null : 'panel')
        }}
      >
        <svg viewBox="0 0 24 24" aria-hidden="true" fill="none" stroke="currentColor" stroke-width="2">
          <ellipse cx="12" cy="6" rx="8" ry="3"></ellipse>
          <path d="M4 6v6c0 1.7 3.6 3 8 3s8-1.3 8-3V6M4 12v6c0 1.7 3.6 3 8 3s8-1.3 8-3v-6"></path>
        </svg>
      </button>
      <div id="sd-panel" class="panel" role="dialog" aria-label=${dialogName} tabindex="-1" ?hidden=${!state.open}>
        ${state.open ? panel(inspector.inspect()) : nothing}
      </div>
    `
  }

  function panel(inspection: SessionInspection): TemplateResult {
    const { status, faults } = inspection
    const pill = overallStatus(inspection)
    const armed = Date.now() < state.clearArmedUntil
    return html`
      <header>
        <div class="title">
          <h2>${dialogName}</h2>
          <span title=${inspection.sessionId}>session <code>${shortId(inspection.sessionId)}</code></span>
          <span title="The server version this page is based on">v${status.version}</span>
          <span class="pill ${pill.tone}" title=${pill.title}>${pill.text}</span>
        </div>
        <div class="actions">
          <button type="button" ?disabled=${state.flushing} @click=${actions.flush}>Flush now</button>
          <button type="button" aria-pressed=${String(inspection.heldOffline)} @click=${actions.toggleOffline}>Work offline</button>
          <span role="group" aria-label="Fail requests on purpose">
            <button type="button" @click=${actions.failNext}>Fail next</button>
            <label
              ><span class="sr-only">Requests to fail</span
              ><input
                type="number"
                min="1"
                max="20"
                .value=${live(String(state.failCount))}
                @change=${(event: Event) => {
                  state.failCount = clampCount((event.target as HTMLInputElement).valueAsNumber)
                  draw()
                }}
            /></label>
            <label
              ><span class="sr-only">Status to fail with</span
              ><select
                @change=${(event: Event) => {
                  state.failStatus = Number((event.target as HTMLSelectElement).value)
                }}
              >
                ${FAULT_STATUSES.map((code) => html`<option value=${code} ?selected=${code === state.failStatus}>${code}</option>`)}
              </select></label
            >
            <label
              ><span class="sr-only">Requests that fail</span
              ><select
                @change=${(event: Event) => {
                  state.failRequests = (event.target as HTMLSelectElement).value === 'all' ? 'all' : 'patches'
                }}
              >
                <option value="patches" ?selected=${state.failRequests === 'patches'}>patches</option>
                <option value="all" ?selected=${state.failRequests === 'all'}>any request</option>
              </select></label
            >
            ${
              faults.remaining > 0
                ? html`<span class="badge err"
                    >${faults.remaining} to fail (${faults.status}, ${faults.requests === 'all' ? 'any request' : 'patches'})</span
                  >`
                : nothing
            }
          </span>
          <button type="button" class=${armed ? 'danger armed' : 'danger'} @click=${actions.clearLocalCopy}>
            ${armed ? 'Really clear?' : 'Clear device copy'}
          </button>
          <span role="group" aria-label="Report">
            <button type="button" @click=${actions.copyReport}>Copy report</button>
            <label
              ><input
                type="checkbox"
                .checked=${live(state.includeValues)}
                @change=${(event: Event) => {
                  state.includeValues = (event.target as HTMLInputElement).checked
                }}
              />
              include values</label
            >
          </span>
          <span role="status" class=${state.message.error ? 'error-text' : 'muted'}>${state.message.text}</span>
        </div>
        ${
          state.reportText === null
            ? nothing
            : html`<div class="report">
                <label for="sd-report">Report, to copy by hand</label>
                <textarea id="sd-report" readonly .value=${state.reportText}></textarea>
                <button
                  type="button"
                  @click=${() => {
                    state.reportText = null
                    draw()
                  }}
                >
                  Hide report
                </button>
              </div>`
        }
      </header>
      <div class="sr-only" aria-live="polite">${announcer.text}</div>
      <div role="tablist" aria-label="Sections" @keydown=${onTabKey}>
        ${TABS.map(
          (tab) =>
            html`<button
              role="tab"
              type="button"
              id="sd-tab-${tab.id}"
              aria-controls="sd-tabpanel-${tab.id}"
              aria-selected=${String(tab.id === state.tab)}
              tabindex=${tab.id === state.tab ? 0 : -1}
              @click=${() => {
                selectTab(tab.id)
              }}
            >
              ${tab.label}${tab.id === 'queue' && inspection.queue.length > 0 ? ` (${inspection.queue.length})` : ''}
            </button>`,
        )}
      </div>
      ${TABS.map(
        (tab) =>
          html`<div
            role="tabpanel"
            id="sd-tabpanel-${tab.id}"
            aria-labelledby="sd-tab-${tab.id}"
            tabindex="0"
            ?hidden=${tab.id !== state.tab}
          >
            ${tab.id === state.tab ? tabContent(tab.id, inspection) : nothing}
          </div>`,
      )}
    `
  }

  function tabContent(tab: Tab, inspection: SessionInspection): TemplateResult {
    switch (tab) {
      case 'variables':
        return variablesView(inspection, state.filter, (filter) => {
          state.filter = filter
          draw()
        })
      case 'queue':
        return queueView(inspection)
      case 'timeline': {
        const kept = events.toArray()
        return html`${timelineStrip(kept, inspection.status.isOnline, inspection.at, mountedAt)}${eventList(kept)}`
      }
      case 'storage':
        return storageView(inspection, state.pages, checkPages)
      case 'runs':
        return runsView(inspection)
    }
  }

  container.addEventListener('keydown', onKeydown)
  setOpen(options.initialOpen ?? false, null)

  return () => {
    if (unmounted) return
    unmounted = true
    for (const stop of unsubscribe) stop()
    cancelFrame?.()
    clearInterval(ticker)
    clearTimeout(clearTimer)
    clearTimeout(messageTimer)
    announcer.dispose()
    container.removeEventListener('keydown', onKeydown)
    render(nothing, container)
    host.remove()
  }
}

/** The header's one-look summary of the sync. */
function overallStatus({ status }: SessionInspection): { text: string; tone: string; title: string } {
  if (status.needsUpdate) return { text: 'Needs update', tone: 'warn', title: 'The server is at another schema version: reload the page' }
  if (!status.isOnline) {
    const waiting = status.pendingKeys.length
    return { text: `Offline (${waiting} unsaved)`, tone: 'warn', title: `${waiting} variable(s) with changes wait to be sent` }
  }
  if (status.error)
    return { text: `Error: ${status.error.code}`, tone: 'err', title: `${errorCode(status.error)}: ${status.error.message}` }
  if (status.isDirty || status.isSyncing) return { text: 'Saving…', tone: 'info', title: `Unconfirmed: ${status.pendingKeys.join(', ')}` }
  return { text: 'Synced', tone: 'ok', title: 'Every change is on the server' }
}

const clampCount = (count: number) => (Number.isFinite(count) ? Math.min(20, Math.max(1, Math.round(count))) : 3)

const messageOf = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** Calls `callback` at the next animation frame (a timer where there are none); returns the cancel. */
function nextFrame(callback: () => void): () => void {
  if (typeof requestAnimationFrame === 'function') {
    const id = requestAnimationFrame(callback)
    return () => {
      cancelAnimationFrame(id)
    }
  }
  const id = setTimeout(callback, 16)
  return () => {
    clearTimeout(id)
  }
}
