export { type ServerErrorCode, SessionProtocolError } from './errors.js'
export { createSessionHandler, type SessionHandler, type SessionHandlerOptions } from './handler.js'
export { conformanceMigrations, conformanceSteps, type Step, type StepContext, StepError, type StepResult, type Steps } from './steps.js'
// The merge engine (src/server/merge.ts) stays inside: a store author gives defineStore a
// backend, and the merge, the rules and the owner check come with it.
export { type KeyMaterial, newKeyBase64, type WebCryptoKey } from '../shared/crypto.js'
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
export type * from '../shared/protocol.js'
export type { SessionSchema, StandardSchemaV1 } from '../shared/schema.js'
export { scopeWorkflow, type SubflowFrame, type VariableAccess, type Workflow } from '../shared/workflow.js'
export { parseWorkflowKey, workflowDataKey, workflowPrefix, workflowSlotKey } from '../shared/workflow-keys.js'
export type { SessionChange, SessionHead } from './merge.js'
export { type FetchHandler, type RunningServer, serve, type ServeOptions, toNodeListener } from './node.js'
export { defineStore, type DefineStoreOptions, SetAsideError, type ValueCodec } from './stores/define.js'
export { encryptedStore, type EncryptedStoreOptions } from './stores/encrypted.js'
export { fileStore } from './stores/file.js'
export { memoryStore } from './stores/memory.js'
export { migrateSessions, type MigrationProgress } from './stores/migrate-sessions.js'
export { openStore } from './stores/open.js'
export { CHANGE_CHANNEL, type PostgresPoolOptions, postgresStore, type PostgresStoreOptions } from './stores/postgres.js'
export { sqliteStore, type SqliteStoreOptions } from './stores/sqlite.js'
export type { ChangeLog, StoredSession } from './stores/stored.js'
export type {
  AccessOptions,
  ApplyOptions,
  ApplyResult,
  Caller,
  ChangeListener,
  CreateOptions,
  CurrentSession,
  ListOptions,
  SessionAnswer,
  SessionBase,
  SessionStore,
  StoreBackend,
  StoreOptions,
  WorkflowState,
  Write,
} from './stores/types.js'
