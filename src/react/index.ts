'use client'

export { SessionProvider, type SessionProviderProps } from './SessionProvider.js'
export { useVariable, type SetValue } from './useVariable.js'
export { useSyncStatus } from './useSyncStatus.js'
export { useRun, type UseRunResult } from './useRun.js'
export { useSessionState, type SessionState } from './useSessionState.js'
export { useSessionClient } from './context.js'
export { useWorkflow } from './useWorkflow.js'
export { useSessions, type UseSessionsResult } from './useSessions.js'
// Everything of `workflow-session/client`, so an app needs one import path; named one by one,
// as a client boundary ('use client') may not `export *` (Next.js refuses it). A test checks
// that nothing of the client entry is missing here.
export {
  createSessionClient,
  SessionError,
  SessionValueError,
  indexedDbLocalCopy,
  memoryLocalCopy,
  forgetSessionId,
  rememberSessionId,
  workflowDataKey,
  workflowSlotKey,
  workflowPrefix,
  parseWorkflowKey,
  encryptedLocalCopy,
  liveUpdates,
  tabSync,
  schemaValidation,
  workflowOf,
  connectToPage,
  type ConnectOptions,
  type DebouncedSend,
  type OnlineSource,
  type SessionPlugin,
  type PluginSession,
  type SessionClient,
  type SessionClientOptions,
  type SessionErrorCode,
  type SyncStatus,
  type LocalCopyStorage,
  type SessionIdStorage,
  type RememberOptions,
  type HeadersOption,
  type JsonValue,
  type Variables,
  type SessionSnapshot,
  type SessionSummary,
  type SessionPatch,
  type RunResponse,
  type SessionSchema,
  type StandardSchemaV1,
  type Workflow,
  type SubflowFrame,
  type KeyMaterial,
} from '../client/index.js'
