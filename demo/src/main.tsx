import './styles.css'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { liveUpdates, SessionProvider, tabSync } from 'workflow-session'
import { SessionDevtools } from 'workflow-session/devtools'
import { demoSchema } from '../schema.js'
import { App } from './App.js'

/** The schema version this page was built for (DEMO_SCHEMA_VERSION, demo/schema.ts). */
declare const DEMO_SCHEMA_VERSION: number

// Changes made elsewhere (another device, a step) appear at once; open tabs share confirmed changes.
const plugins = [liveUpdates(), tabSync()]

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider endpoint="/api/session" plugins={plugins} migrations={demoSchema(DEMO_SCHEMA_VERSION)}>
      <App schemaVersion={DEMO_SCHEMA_VERSION} />
      {/* The session devtools: the round button at the bottom right opens them (this page is a production build: enabled). */}
      <SessionDevtools enabled />
    </SessionProvider>
  </StrictMode>,
)
