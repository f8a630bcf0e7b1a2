/**
 * The CSS of the devtools' shadow root. `:host { all: initial }` keeps the app's styles out
 * (the shadow root keeps ours in); the host is fixed in a corner, so it shifts nothing in the
 * app's layout. Colours are custom properties, light by default and dark under the host's
 * `theme-dark` class or, with `theme-system`, the system's dark scheme; every text colour is at
 * least 4.5:1 against the background it sits on.
 */

const dark = `
  color-scheme: dark;
  --bg: #0d1117; --bg-alt: #161b22; --fg: #e6edf3; --muted: #9198a1; --border: #30363d; --chip: #21262d;
  --accent: #58a6ff; --accent-fg: #0d1117; --focus: #58a6ff;
  --ok: #3fb950; --ok-bg: #0f2a1a; --warn: #e3b341; --warn-bg: #2e2208; --info: #79c0ff; --info-bg: #0c2d4a;
  --err: #ff7b72; --err-bg: #3a1518; --purple: #d2a8ff; --purple-bg: #2a1a3f; --band: rgba(145, 152, 161, 0.25);
  --shadow: 0 8px 24px rgba(0, 0, 0, 0.6);
`

export const devtoolsStyles = `
:host {
  all: initial;
  position: fixed !important;
  z-index: 2147483000 !important;
  display: block !important;
  font: 12px/1.4 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: var(--fg);
  color-scheme: light;
  --bg: #ffffff; --bg-alt: #f6f8fa; --fg: #1f2328; --muted: #57606a; --border: #d0d7de; --chip: #eaeef2;
  --accent: #0969da; --accent-fg: #ffffff; --focus: #0969da;
  --ok: #116329; --ok-bg: #dafbe1; --warn: #7d4e00; --warn-bg: #fff8c5; --info: #0550ae; --info-bg: #ddf4ff;
  --err: #b42318; --err-bg: #ffebe9; --purple: #6e40c9; --purple-bg: #fbefff; --band: rgba(87, 96, 106, 0.18);
  --shadow: 0 8px 24px rgba(31, 35, 40, 0.2);
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace;
}
:host(.theme-dark) { ${dark} }
@media (prefers-color-scheme: dark) {
  :host(.theme-system) { ${dark} }
}
:host(.bottom-right) { bottom: 12px !important; right: 12px !important; }
:host(.bottom-left) { bottom: 12px !important; left: 12px !important; }
:host(.top-right) { top: 12px !important; right: 12px !important; }
:host(.top-left) { top: 12px !important; left: 12px !important; }

*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
:focus-visible { outline: 2px solid var(--focus); outline-offset: 1px; }

.root {
  /* Inherited properties an app sets on the host (say, \`body * { font-family: … }\`) stop here. */
  all: initial;
  display: flex;
  gap: 8px;
  font: 12px/1.4 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  color: var(--fg);
}
:host(.bottom-right) .root { flex-direction: column-reverse; align-items: flex-end; }
:host(.bottom-left) .root { flex-direction: column-reverse; align-items: flex-start; }
:host(.top-right) .root { flex-direction: column; align-items: flex-end; }
:host(.top-left) .root { flex-direction: column; align-items: flex-start; }

button, input, select, textarea { font: inherit; color: inherit; }
button {
  background: var(--bg-alt); border: 1px solid var(--border); border-radius: 6px; padding: 2px 8px; cursor: pointer; white-space: nowrap;
}
button:hover { border-color: var(--muted); }
button:disabled { cursor: default; color: var(--muted); }
button[aria-pressed='true'] { background: var(--warn-bg); color: var(--warn); border-color: currentColor; }
button.danger { color: var(--err); }
button.armed { background: var(--err-bg); color: var(--err); border-color: currentColor; }
input, select, textarea { background: var(--bg); border: 1px solid var(--border); border-radius: 4px; padding: 1px 4px; }
input[type='number'] { width: 4em; }

.toggle {
  width: 36px; height: 36px; padding: 0; border: none; border-radius: 50%;
  display: grid; place-items: center; background: var(--accent); color: var(--accent-fg); box-shadow: var(--shadow);
}
.toggle svg { width: 18px; height: 18px; }

.panel {
  width: min(720px, calc(100vw - 24px)); height: min(480px, 60vh);
  display: flex; flex-direction: column; overflow: hidden;
  background: var(--bg); color: var(--fg); border: 1px solid var(--border); border-radius: 8px; box-shadow: var(--shadow);
}
.panel:focus { outline: none; }
.panel:focus-visible { outline: 2px solid var(--focus); }

header { padding: 6px 8px; border-bottom: 1px solid var(--border); display: flex; flex-direction: column; gap: 6px; }
.title, .actions { display: flex; flex-wrap: wrap; align-items: center; gap: 6px 10px; }
.title h2 { font-size: 13px; margin: 0; }
.actions [role='group'] { display: inline-flex; align-items: center; gap: 4px; }
.report { display: flex; flex-direction: column; gap: 4px; }
.report textarea { width: 100%; height: 8em; font-family: var(--mono); font-size: 11px; }
.report button { align-self: flex-start; }

[role='tablist'] { display: flex; border-bottom: 1px solid var(--border); padding: 0 4px; }
[role='tab'] { border: none; border-bottom: 2px solid transparent; border-radius: 0; background: none; color: var(--muted); padding: 4px 10px; }
[role='tab'][aria-selected='true'] { color: var(--fg); border-bottom-color: var(--accent); font-weight: 600; }
[role='tabpanel'] { flex: 1; min-height: 0; overflow: auto; padding: 6px 8px 10px; }

table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 2px 6px; border-bottom: 1px solid var(--border); vertical-align: top; }
thead th { color: var(--muted); font-weight: 600; position: sticky; top: 0; background: var(--bg); }
th[scope='rowgroup'] { background: var(--bg-alt); font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.mono, td.value, code { font-family: var(--mono); font-size: 11px; }
td.value { word-break: break-all; }

.badge, .pill {
  display: inline-block; padding: 0 6px; border-radius: 10px; line-height: 16px; white-space: nowrap;
  background: var(--chip); color: var(--fg); font-size: 11px;
}
.pill { font-size: 12px; line-height: 18px; padding: 0 8px; font-weight: 600; }
.ok { background: var(--ok-bg); color: var(--ok); }
.warn { background: var(--warn-bg); color: var(--warn); }
.info { background: var(--info-bg); color: var(--info); }
.err { background: var(--err-bg); color: var(--err); }
.purple { background: var(--purple-bg); color: var(--purple); }

.muted { color: var(--muted); }
.error-text { color: var(--err); }
.empty { color: var(--muted); padding: 12px 2px; margin: 0; }
.warning { background: var(--warn-bg); color: var(--warn); padding: 4px 6px; border-radius: 4px; margin: 4px 0; }
.toolbar { display: flex; align-items: center; gap: 8px; margin-bottom: 6px; }
h3 { font-size: 12px; margin: 10px 0 4px; }
h3:first-child { margin-top: 2px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 12px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; }
ul.plain { margin: 0; padding-left: 16px; }

.strip { display: block; width: 100%; height: auto; background: var(--bg-alt); border: 1px solid var(--border); border-radius: 4px; }
.strip text { font: 9px var(--mono); fill: var(--muted); }
.strip .lane { stroke: var(--border); stroke-width: 1; }
.band { fill: var(--band); }
.legend .band { stroke: var(--muted); stroke-width: 1; }
.t-write { fill: var(--muted); }
.t-send { fill: var(--info); }
.t-confirmed { fill: var(--ok); }
.t-received { fill: var(--purple); }
.t-error { fill: var(--err); stroke: var(--err); stroke-width: 2; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 12px; margin: 4px 0 8px; color: var(--muted); }
.legend svg { width: 10px; height: 10px; vertical-align: -1px; margin-right: 3px; }
.events td:first-child { white-space: nowrap; }

.sr-only { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
`
