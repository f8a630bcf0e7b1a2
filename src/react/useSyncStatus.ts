'use client'

import { useSyncExternalStore } from 'react'
import type { SyncStatus } from '../client/status.js'
import { useSessionClient } from './context.js'

/**
 * The sync status alone: renders only when it changes.
 *
 * @example
 * const { isDirty, isSyncing, error } = useSyncStatus()
 * return <span>{error ? 'Not saved' : isDirty ? 'Saving…' : 'Saved'}</span>
 */
export function useSyncStatus(): SyncStatus {
  const client = useSessionClient()
  return useSyncExternalStore(client.subscribeStatus, client.getStatus, client.getStatus)
}
