export { SessionProvider, type SessionProviderProps } from './SessionProvider.js'
export { useVariable, useSyncStatus, useRun, type SetValue, type UseRunResult } from './hooks.js'
export { useSessionState, type SessionState } from './useSessionState.js'
export { useSessionClient } from './context.js'
export {
  createSessionClient,
  SessionError,
  SessionValueError,
  indexedDbStorage,
  memoryStorage,
  forgetSessionId,
  type SessionClient,
  type SessionClientOptions,
  type SessionMeta,
  type SessionErrorCode,
  type CacheStorage,
} from '../client/index.js'
export type { JsonValue, Variables, SessionSnapshot } from '../shared/protocol.js'
