'use client'

import { useEffect, useState } from 'react'
import { useVariable } from 'workflow-session'

export default function Page() {
  const [name, setName] = useVariable('name', '')
  // Tells the test when React has taken over the server's HTML (typing before that would be lost).
  const [hydrated, setHydrated] = useState(false)
  useEffect(() => setHydrated(true), [])
  return (
    <main data-hydrated={hydrated}>
      <label>
        Name <input name="name" value={name} onChange={(event) => setName(event.target.value)} />
      </label>
    </main>
  )
}
