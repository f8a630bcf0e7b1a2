'use client'

export { useSessionClient } from './context.js'
export { SessionProvider, type SessionProviderProps } from './SessionProvider.js'
export { useRun, type UseRunResult, useRuns } from './useRun.js'
export { useSessions, type UseSessionsResult } from './useSessions.js'
export { type SessionState, useSessionState } from './useSessionState.js'
export { useSyncStatus } from './useSyncStatus.js'
export { type SetValue, useVariable } from './useVariable.js'
export { useWorkflow } from './useWorkflow.js'
// Everything of `workflow-session/client`, so an app needs one import path; named one by one,
// as a client boundary ('use client') may not `export *` (Next.js refuses it). A test checks
// that nothing of the client entry is missing here.
export {
  type ConnectOptions,
  connectToPage,
  createSessionClient,
  type DebouncedSend,
  defineMigrations,
  encryptedLocalCopy,
  forgetSessionId,
  type HeadersOption,
  indexedDbLocalCopy,
  type JsonValue,
  type KeyMaterial,
  liveUpdates,
  type LocalCopyStorage,
  memoryLocalCopy,
  MigrationError,
  type MigrationFunctions,
  type MigrationOptions,
  type Migrations,
  type MigrationsDeclaration,
  type OnlineSource,
  parseWorkflowKey,
  type PluginSession,
  type RememberOptions,
  rememberSessionId,
  type RunAnswer,
  type RunDelta,
  RunFailedError,
  type RunRecord,
  type RunResponse,
  type RunStatus,
  schemaValidation,
  type SessionClient,
  type SessionClientOptions,
  type SessionDelta,
  SessionError,
  type SessionErrorCode,
  type SessionIdStorage,
  type SessionPatch,
  type SessionPlugin,
  type SessionSchema,
  type SessionSnapshot,
  type SessionSummary,
  SessionValueError,
  SET_ASIDE_KEY,
  type SetAsideValue,
  type StandardSchemaV1,
  type SubflowFrame,
  type SyncStatus,
  tabSync,
  type Variables,
  type Workflow,
  workflowDataKey,
  workflowOf,
  workflowPrefix,
  workflowSlotKey,
} from '../client/index.js'
