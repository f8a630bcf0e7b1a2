import { createRoot } from 'react-dom/client'
import { SessionProvider, tabSync, useSyncStatus, useVariable } from '../../../src/react/index.js'

function Field({ name }: { name: string }) {
  const [value, setValue] = useVariable<string>(name, '')
  return (
    <label>
      {name}
      <input aria-label={name} value={value} onChange={(event) => setValue(event.target.value)} />
    </label>
  )
}

function Status() {
  const meta = useSyncStatus()
  const text = meta.error ? `error ${meta.error.code}` : meta.isDirty ? 'unsaved' : 'saved'
  return (
    <output
      aria-label="status"
      data-hydrated={String(meta.isHydrated)}
      data-persistent={String(meta.isPersistent)}
      data-online={String(meta.isOnline)}
    >
      {text}
    </output>
  )
}

const params = new URLSearchParams(location.search)
// Open tabs of one session share confirmed changes at once.
const plugins = [tabSync()]

createRoot(document.getElementById('root')!).render(
  <SessionProvider
    endpoint="/api/session"
    plugins={plugins}
    sessionId={params.get('session') ?? undefined}
    debounceMs={Number(params.get('debounce') ?? 800)}
  >
    <Field name="email" />
    <Field name="name" />
    <Status />
  </SessionProvider>,
)
