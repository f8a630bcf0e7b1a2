import './styles.css'
import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { liveUpdates, SessionProvider, tabSync } from 'workflow-session'
import { App } from './App.js'

// Changes made elsewhere (another device, a step) appear at once; open tabs share confirmed changes.
const plugins = [liveUpdates(), tabSync()]

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider endpoint="/api/session" plugins={plugins}>
      <App />
    </SessionProvider>
  </StrictMode>,
)
