import { useSyncStatus } from 'workflow-session'

/** What a person needs to know about their changes, in words. */
function syncText(meta: ReturnType<typeof useSyncStatus>): string {
  if (!meta.isHydrated) return 'Loading…'
  if (!meta.isOnline) return meta.isDirty ? 'Offline — changes kept' : 'Offline'
  if (meta.error?.retryable && meta.isDirty) return `Couldn't save (${meta.error.message}). Retrying…`
  if (meta.error && !meta.error.retryable) return `Not saved: ${meta.error.message}`
  if (meta.isDirty) return 'Saving…'
  return meta.lastSyncedAt === null ? 'All changes are kept on this device' : 'Saved'
}

export function SyncBadge() {
  const meta = useSyncStatus()
  return (
    <p role="status" aria-live="polite" className="sync-badge" data-dirty={meta.isDirty} data-persistent={meta.isPersistent}>
      {syncText(meta)}
      {!meta.isPersistent && ' (this browser keeps nothing offline)'}
      {meta.needsUpdate && (
        <>
          {' '}
          A new version of this page is out: your changes are kept.{' '}
          <button type="button" onClick={() => location.reload()}>
            Reload
          </button>
        </>
      )}
    </p>
  )
}
