'use client'

export { SessionProvider, type SessionProviderProps } from './SessionProvider.js'
export { useVariable, useSyncStatus, useRun, type SetValue, type UseRunResult } from './hooks.js'
export { useSessionState, type SessionState } from './useSessionState.js'
export { useSessionClient } from './context.js'
export { useWorkflow } from './useWorkflow.js'
export { useSessions, type UseSessionsResult } from './useSessions.js'
export {
  createSessionClient,
  SessionError,
  SessionValueError,
  indexedDbStorage,
  memoryStorage,
  encryptedStorage,
  forgetSessionId,
  rememberSessionId,
  type SessionIdStorage,
  workflowDataKey,
  workflowSlotKey,
  workflowPrefix,
  parseWorkflowKey,
  type SessionClient,
  type SessionClientOptions,
  type SessionMeta,
  type SessionErrorCode,
  type CacheStorage,
} from '../client/index.js'
export type { JsonValue, Variables, SessionSnapshot, SessionSummary } from '../shared/protocol.js'
export type { SessionSchema, StandardSchemaV1 } from '../shared/schema.js'
export type { Workflow, SubflowFrame } from '../shared/workflow.js'
