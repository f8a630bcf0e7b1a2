export type { KeyMaterial } from '../shared/crypto.js'
export {
  defineMigrations,
  MigrationError,
  type MigrationFunctions,
  type MigrationOptions,
  type Migrations,
  type MigrationsDeclaration,
  SET_ASIDE_KEY,
  type SetAsideValue,
} from '../shared/migrations.js'
export type {
  JsonValue,
  RunAnswer,
  RunDelta,
  RunRecord,
  RunResponse,
  RunStatus,
  SessionDelta,
  SessionPatch,
  SessionSnapshot,
  SessionSummary,
  Variables,
} from '../shared/protocol.js'
export type { SessionSchema, StandardSchemaV1 } from '../shared/schema.js'
export type { SubflowFrame, Workflow } from '../shared/workflow.js'
export { parseWorkflowKey, workflowDataKey, workflowPrefix, workflowSlotKey } from '../shared/workflow-keys.js'
export { indexedDbLocalCopy, type LocalCopyStorage, memoryLocalCopy } from './cache.js'
export { type ConnectOptions, connectToPage, type DebouncedSend, type OnlineSource } from './connect.js'
export { encryptedLocalCopy } from './encrypted-storage.js'
export { SessionError, type SessionErrorCode, SessionValueError } from './errors.js'
export { liveUpdates } from './live.js'
export type { PluginSession, SessionPlugin } from './plugins.js'
export { RunFailedError } from './runs.js'
export { schemaValidation } from './schema-validation.js'
export { createSessionClient, type SessionClient, type SessionClientOptions } from './session-client.js'
export { forgetSessionId, type RememberOptions, rememberSessionId, type SessionIdStorage } from './session-id.js'
export type { SyncStatus } from './status.js'
export { tabSync } from './tab-sync.js'
export type { HeadersOption } from './transport.js'
export { workflowOf } from './workflow.js'
