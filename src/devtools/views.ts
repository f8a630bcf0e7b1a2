import { html, nothing, type TemplateResult } from 'lit-html'
import { live } from 'lit-html/directives/live.js'
import type { RunRecord } from '../shared/protocol.js'
import { parseWorkflowKey } from '../shared/workflow-keys.js'
import { ago, clock, countdown, duration, errorCode, errorLine, jsonText, shortId, truncate } from './format.js'
import type { InspectedVariable, SessionInspection } from './inspector.js'

/** A variable as the table shows it: the name within its group, and whether it is a workflow's own slot (step, flow…). */
interface Row {
  variable: InspectedVariable
  name: string
  slot: boolean
}

/** Variables grouped as the workflow view shows them: plain ones (workflowId null) first, then one group per workflow, by id. */
function groupVariables(variables: readonly InspectedVariable[]): Array<{ workflowId: string | null; rows: Row[] }> {
  const plain: Row[] = []
  const workflows = new Map<string, Row[]>()
  for (const variable of variables) {
    const parsed = parseWorkflowKey(variable.key)
    if (!parsed) {
      plain.push({ variable, name: variable.key, slot: false })
      continue
    }
    const rows = workflows.get(parsed.workflowId) ?? []
    rows.push('field' in parsed ? { variable, name: parsed.field, slot: false } : { variable, name: parsed.slot, slot: true })
    workflows.set(parsed.workflowId, rows)
  }
  const grouped = [...workflows].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([workflowId, rows]) => ({ workflowId, rows }))
  return [{ workflowId: null, rows: plain }, ...grouped]
}

/** Where a variable stands, as a badge. */
function stateBadge(variable: InspectedVariable, version: number): TemplateResult {
  switch (variable.state) {
    case 'confirmed':
      return html`<span class="badge ok" title="Confirmed by the server (session version ${version})">v${version}</span>`
    case 'pending':
      return html`<span class="badge warn" title="Changed here, not yet in a patch">changed here</span>`
    case 'queued':
      return html`<span class="badge info" title="In a patch waiting its turn">queued</span>`
    case 'sending':
      return html`<span class="badge info" title="In the patch on its way, or waiting for its retry">sending</span>`
    case 'refused': {
      const error = variable.error
      return html`<span class="badge err" title=${error ? errorLine(error) : 'Refused by the server'}
        >refused: ${error?.message ?? 'no reason given'}</span
      >`
    }
  }
}

/** How many variables the Variables tab draws at most. */
const MAX_ROWS = 500

/** The Variables tab: a filter and a table of every variable, grouped by workflow. */
export function variablesView(inspection: SessionInspection, filter: string, onFilter: (filter: string) => void): TemplateResult {
  const needle = filter.trim().toLowerCase()
  const matches = (row: Row, workflowId: string | null) =>
    !needle || [row.variable.key, row.name, workflowId ?? ''].some((text) => text.toLowerCase().includes(needle))
  // At most MAX_ROWS rows: a session of thousands of variables stays quick to draw while one types (the filter finds the rest).
  let room = MAX_ROWS
  let matching = 0
  const groups = groupVariables(inspection.variables)
    .map(({ workflowId, rows }) => {
      const found = rows.filter((row) => matches(row, workflowId))
      matching += found.length
      const kept = found.slice(0, room)
      room -= kept.length
      return { workflowId, rows: kept, found: found.length }
    })
    .filter(({ rows }) => rows.length > 0)
  const shown = groups.reduce((total, { rows }) => total + rows.length, 0)
  const total = inspection.variables.length
  const version = inspection.base?.version ?? 0

  return html`
    <div class="toolbar">
      <label
        >Filter
        <input
          type="search"
          placeholder="name or workflow"
          .value=${live(filter)}
          @input=${(event: Event) => {
            onFilter((event.target as HTMLInputElement).value)
          }}
      /></label>
      <span class="muted">${shown} of ${total} shown${shown < matching ? ` (the first ${MAX_ROWS}: filter to find the others)` : ''}</span>
    </div>
    ${
      total === 0
        ? html`<p class="empty">No variables yet.</p>`
        : matching === 0
          ? html`<p class="empty">No variable matches “${filter}”.</p>`
          : html`<table>
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Value</th>
                  <th scope="col">State</th>
                </tr>
              </thead>
              ${groups.map(
                ({ workflowId, rows, found }) =>
                  html`<tbody>
                    <tr>
                      <th scope="rowgroup" colspan="3">
                        ${workflowId === null ? 'Variables' : html`Workflow <code>${workflowId}</code>`}
                        <span class="muted">(${found})</span>
                      </th>
                    </tr>
                    ${rows.map(({ variable, name, slot }) => {
                      const text = jsonText(variable.value)
                      return html`<tr>
                        <td class="mono" title=${variable.key}>${name}${slot ? html` <span class="badge">slot</span>` : nothing}</td>
                        <td class="value" title=${text}>
                          ${variable.value === undefined ? html`<span class="muted">deleted</span>` : truncate(text)}
                        </td>
                        <td>${stateBadge(variable, version)}</td>
                      </tr>`
                    })}
                  </tbody>`,
              )}
            </table>`
    }
  `
}

/** The Queue tab: the patches not yet confirmed, oldest first. */
export function queueView(inspection: SessionInspection): TemplateResult {
  const { queue, status } = inspection
  if (queue.length === 0) {
    return html`<p class="empty">
      ${status.isDirty ? `Changes waiting for the debounce: ${status.pendingKeys.join(', ')}` : 'Nothing queued: every change is on the server'}
    </p>`
  }
  return html`<table>
    <thead>
      <tr>
        <th scope="col">Seq</th>
        <th scope="col">Page</th>
        <th scope="col">Keys</th>
        <th scope="col">Bytes</th>
        <th scope="col">Attempts</th>
        <th scope="col">Last error</th>
        <th scope="col">Next retry</th>
        <th scope="col">Sending</th>
      </tr>
    </thead>
    <tbody>
      ${queue.map(
        (patch) =>
          html`<tr>
            <td class="num">${patch.seq}</td>
            <td class="mono" title=${patch.clientId}>
              ${shortId(patch.clientId)}
              ${patch.clientId === inspection.clientId ? nothing : html`<span class="badge warn">closed tab</span>`}
            </td>
            <td class="mono" title=${patch.keys.join('\n')}>${truncate(patch.keys.join(', '), 60)}</td>
            <td class="num">${patch.bytes}</td>
            <td class="num">${patch.attempts}</td>
            <td>
              ${patch.lastError ? html`<span class="error-text" title=${patch.lastError.message}>${errorCode(patch.lastError)}</span>` : '—'}
            </td>
            <td>${patch.nextRetryAt === null ? '—' : countdown(patch.nextRetryAt, inspection.at)}</td>
            <td>${patch.sending ? html`<span class="badge info">sending</span>` : nothing}</td>
          </tr>`,
      )}
    </tbody>
  </table>`
}

/** What `livePages()` answered last: null while never asked. */
export interface LivePagesState {
  checking: boolean
  pages: string[] | null
  error: string | null
}

const yesNo = (yes: boolean) => (yes ? 'yes' : 'no')

/** The Storage tab: the local copy, this tab's lock, the open pages, and the change stream. */
export function storageView(inspection: SessionInspection, pages: LivePagesState, onRefreshPages: () => void): TemplateResult {
  const { localCopy, tab, feed, at: now } = inspection
  const left = localCopy.leftByPages
  return html`
    <h3>Local copy</h3>
    <dl class="facts">
      <dt>Storage</dt>
      <dd>${localCopy.storage}</dd>
      <dt>Persistent</dt>
      <dd>${yesNo(localCopy.persistent)}</dd>
      <dt>Last write</dt>
      <dd>
        ${
          localCopy.lastWrite
            ? html`${clock(localCopy.lastWrite.at)} (${ago(localCopy.lastWrite.at, now)}),
              ${localCopy.lastWrite.ok ? 'ok' : html`<span class="error-text">failed</span>`}`
            : 'none yet'
        }
      </dd>
    </dl>
    ${
      localCopy.persistent
        ? nothing
        : html`<p class="warning">
            Not persistent: changes are kept in memory only, and a reload loses what the server does not have yet.
          </p>`
    }
    <h3>Left by other pages</h3>
    ${
      left === null
        ? html`<p class="empty">Not read yet.</p>`
        : left.length === 0
          ? html`<p class="empty">None: no other page of this session left changes on this device.</p>`
          : html`<ul class="plain">
              ${left.map(
                (page) =>
                  html`<li>
                    <code>${page.clientId}</code>: ${page.patches} patch${page.patches === 1 ? '' : 'es'},
                    ${page.takenOver ? 'taken over' : 'left to an open tab'}
                  </li>`,
              )}
            </ul>`
    }
    <h3>This tab</h3>
    <dl class="facts">
      <dt>Client id</dt>
      <dd><code>${tab.clientId}</code></dd>
      <dt>Web Locks</dt>
      <dd>${tab.locks ? 'supported' : 'not available'}</dd>
      <dt>Holds its lock</dt>
      <dd>${yesNo(tab.holdsLock)}</dd>
    </dl>
    <h3>Open pages <button type="button" @click=${onRefreshPages} ?disabled=${pages.checking}>Check again</button></h3>
    ${
      pages.checking && pages.pages === null
        ? html`<p class="empty">checking…</p>`
        : pages.error !== null
          ? html`<p class="error-text">Could not ask: ${pages.error}</p>`
          : pages.pages === null || pages.pages.length === 0
            ? html`<p class="empty">
                ${pages.checking ? 'checking…' : tab.locks ? 'None the browser tells of.' : 'Unknown: no Web Locks on this page.'}
              </p>`
            : html`<ul class="plain">
                ${pages.pages.map(
                  (id) => html`<li><code>${id}</code>${id === tab.clientId ? html` <span class="badge">this page</span>` : nothing}</li>`,
                )}
              </ul>`
    }
    <h3>Change stream</h3>
    ${
      feed === null
        ? html`<p class="empty">
            ${inspection.following ? 'Following the change stream: nothing heard of it yet' : 'Not following the change stream (add liveUpdates())'}
          </p>`
        : html`<dl class="facts">
            <dt>Connection</dt>
            <dd>${feed.connected ? html`<span class="badge ok">connected</span>` : html`<span class="badge warn">disconnected</span>`}</dd>
            <dt>Connects</dt>
            <dd>${feed.connects}</dd>
            <dt>Last event</dt>
            <dd>
              ${feed.lastEventVersion === null ? 'none yet' : `v${feed.lastEventVersion}`}
              ${feed.lastEventAt === null ? nothing : `(${ago(feed.lastEventAt, now)})`}
            </dd>
            <dt>Last error</dt>
            <dd>${feed.lastError === null ? 'none' : html`<span class="error-text">${feed.lastError}</span>`}</dd>
          </dl>`
    }
  `
}

const RUN_TONES: Record<RunRecord['status'], string> = {
  running: 'info',
  succeeded: 'ok',
  failed: 'err',
  cancelled: 'warn',
  timed_out: 'err',
  lost: 'err',
}

/** How long a run took, or has been running (times are ISO strings; an unreadable one shows nothing). */
function runDuration(run: RunRecord, now: number): string {
  const start = Date.parse(run.startedAt)
  const end = run.finishedAt === null ? now : Date.parse(run.finishedAt)
  if (Number.isNaN(start) || Number.isNaN(end)) return '—'
  return run.finishedAt === null ? `${duration(end - start)} so far` : duration(end - start)
}

/** The Runs tab: the session's runs this page knows, newest first. */
export function runsView(inspection: SessionInspection): TemplateResult {
  const { runs } = inspection
  if (runs.length === 0) return html`<p class="empty">No runs yet: a server step started with run() or startRun() shows here.</p>`
  return html`<table>
    <thead>
      <tr>
        <th scope="col">Step</th>
        <th scope="col">Status</th>
        <th scope="col">Progress</th>
        <th scope="col">Duration</th>
        <th scope="col">Error</th>
      </tr>
    </thead>
    <tbody>
      ${runs.map((run) => {
        const progress = jsonText(run.progress)
        return html`<tr>
          <td class="mono" title=${run.runId}>${run.step}</td>
          <td><span class="badge ${RUN_TONES[run.status]}">${run.status}</span></td>
          <td class="value" title=${progress}>${run.progress === null ? '—' : truncate(progress, 40)}</td>
          <td>${runDuration(run, inspection.at)}</td>
          <td>
            ${run.error ? html`<span class="error-text" title=${run.error.message}>${run.error.code}: ${truncate(run.error.message, 60)}</span>` : '—'}
          </td>
        </tr>`
      })}
    </tbody>
  </table>`
}
