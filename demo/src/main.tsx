import { StrictMode } from 'react'
import { createRoot } from 'react-dom/client'
import { SessionProvider } from 'workflow-session'
import { App } from './App.js'
import './styles.css'

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider endpoint="/api/session" live>
      <App />
    </SessionProvider>
  </StrictMode>,
)
