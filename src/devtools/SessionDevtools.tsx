'use client'

import { useEffect } from 'react'
import { useSessionClient } from '../react/context.js'
import { mountSessionDevtools } from './mount.js'
import type { DevtoolsOptions } from './panel.js'

export interface SessionDevtoolsProps extends DevtoolsOptions {
  /**
   * Whether the devtools show. Default: in development only (`process.env.NODE_ENV` is not
   * `'production'`, as bundlers set it); `true` shows them in a production build too.
   */
  enabled?: boolean
}

/** Whether the bundler built for production (a page without a bundler has no `process`: development). */
const isProduction = (() => {
  try {
    return process.env.NODE_ENV === 'production'
  } catch {
    return false
  }
})()

/**
 * The session devtools: a small button in a corner of the page that opens a panel of the
 * session of the nearest `SessionProvider` — every variable's state, the queued patches with
 * their attempts, the sync timeline, the local copy, the tabs, the change stream and the runs —
 * with the actions that provoke the hard cases (offline, failing requests, a cleared copy).
 * Place it anywhere inside the provider; it renders outside the app's tree (in its own shadow
 * root on `document.body`), so the app's layout and styles are untouched. In a production build
 * it renders nothing unless `enabled`.
 *
 * @example
 * <SessionProvider>
 *   <App />
 *   <SessionDevtools />
 * </SessionProvider>
 */
export function SessionDevtools({ enabled = !isProduction, position, initialOpen, theme, buttonLabel }: SessionDevtoolsProps): null {
  const client = useSessionClient()
  // While the page hydrates the provider hands out a stand-in with no client id (the server's
  // render): the panel mounts on the browser's client, which comes right after.
  const ready = enabled && client.clientId !== ''
  useEffect(
    () =>
      ready
        ? mountSessionDevtools(client, undefined, {
            ...(position && { position }),
            ...(initialOpen !== undefined && { initialOpen }),
            ...(theme && { theme }),
            ...(buttonLabel && { buttonLabel }),
          })
        : undefined,
    [client, ready, position, initialOpen, theme, buttonLabel],
  )
  return null
}
