import type { ReactNode } from 'react'
import { SessionProvider } from 'workflow-session'

// A server component, as App Router apps have their root layout: the provider is a client
// component rendered from it.
export default function RootLayout({ children }: { children: ReactNode }) {
  return (
    <html lang="en">
      <body>
        <SessionProvider endpoint="/api/session">{children}</SessionProvider>
      </body>
    </html>
  )
}
