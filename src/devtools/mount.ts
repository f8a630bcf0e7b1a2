import type { SessionClient } from '../client/types.js'
import type { DevtoolsOptions } from './panel.js'

/**
 * Mounts the session devtools on the page: a round button in a corner that opens a panel of
 * what `client` holds (variables, queue, timeline, storage, runs), with the actions that provoke
 * the hard cases (offline, failing requests, a cleared device copy). It lives in a shadow root of
 * its own host element, appended to `element` (default `document.body`), so the app's CSS and the
 * panel's never meet. The panel's code is loaded here, on demand: a bundler that splits code
 * keeps it out of the app's first chunk. Returns the function that removes it (also before it
 * showed) and stops listening.
 *
 * @example
 * if (import.meta.env.DEV) mountSessionDevtools(client, document.body, { position: 'bottom-left' })
 */
export function mountSessionDevtools(client: SessionClient, element?: HTMLElement, options?: DevtoolsOptions): () => void {
  // lit-html's development build (what dev servers load) says "Lit is in dev mode" on the
  // console as it loads: noise in every app that shows the devtools, which are for development.
  ;((globalThis as { litIssuedWarnings?: Set<string> }).litIssuedWarnings ??= new Set<string>()).add('dev-mode')
  let unmount: (() => void) | undefined
  let gone = false
  import('./panel.js')
    .then(({ mountPanel }) => {
      if (!gone) unmount = mountPanel(client, element, options)
    })
    // A chunk that did not load (a deploy, a restarted dev server) or a panel that could not mount: said, not swallowed.
    .catch((error: unknown) => console.error('workflow-session/devtools: the panel could not be shown', error))
  mounted.set(client, (mounted.get(client) ?? 0) + 1)
  return () => {
    if (gone) return
    gone = true
    unmount?.()
    mounted.set(client, mounted.get(client)! - 1)
    // The last panel of this client lets go of what it provoked (no hold or failure outlives its
    // undo button); one mounted again in its place at once (its options changed) keeps them.
    queueMicrotask(() => {
      if (mounted.get(client) === 0) void import('./inspector.js').then(({ releaseInspector }) => releaseInspector(client))
    })
  }
}

/** How many panels are mounted (or loading) for each client. */
const mounted = new WeakMap<SessionClient, number>()
