'use client'

export { SessionProvider, type SessionProviderProps } from './SessionProvider.js'
export { useVariable, type SetValue } from './useVariable.js'
export { useSyncStatus } from './useSyncStatus.js'
export { useRun, type UseRunResult } from './useRun.js'
export { useSessionState, type SessionState } from './useSessionState.js'
export { useSessionClient } from './context.js'
export { useWorkflow } from './useWorkflow.js'
export { useSessions, type UseSessionsResult } from './useSessions.js'
// Everything of `workflow-session/client`, so an app needs one import path.
export * from '../client/index.js'
