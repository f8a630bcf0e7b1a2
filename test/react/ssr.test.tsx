// @vitest-environment node
import { renderToString } from 'react-dom/server'
import { expect, it } from 'vitest'
import { SessionProvider, useSyncStatus, useVariable } from '../../src/react/index.js'

function Form() {
  const [email] = useVariable<string>('email', 'nobody@example.com')
  const { isDirty } = useSyncStatus()
  return <p>{email} {isDirty ? 'unsaved' : 'saved'}</p>
}

it('renders on the server without the DOM, localStorage, IndexedDB or BroadcastChannel', () => {
  const touched: string[] = []
  const traps = ['window', 'document', 'localStorage', 'indexedDB', 'navigator', 'BroadcastChannel'] as const
  const saved = traps.map((name) => [name, Object.getOwnPropertyDescriptor(globalThis, name)] as const)
  for (const name of traps) {
    Object.defineProperty(globalThis, name, { configurable: true, get: () => (touched.push(name), undefined) })
  }
  let html = ''
  try {
    html = renderToString(
      <SessionProvider endpoint="/api/session" sessionId="ssr-session-1">
        <Form />
      </SessionProvider>,
    )
  } finally {
    for (const [name, descriptor] of saved) {
      if (descriptor) Object.defineProperty(globalThis, name, descriptor)
      else delete (globalThis as Record<string, unknown>)[name]
    }
  }
  expect(html).toBe('<p>nobody@example.com<!-- --> <!-- -->saved</p>')
  // `typeof window` / `navigator?.onLine` feature checks (React, use-debounce, ours) are fine: they
  // see undefined and carry on. Storage and the DOM are never reached for.
  expect(touched.filter((name) => name !== 'window' && name !== 'navigator')).toEqual([])
})
