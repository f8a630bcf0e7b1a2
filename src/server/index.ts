export { createSessionHandler, type SessionHandler, type SessionHandlerOptions } from './handler.js'
export { SessionProtocolError, type ServerErrorCode } from './errors.js'
export { StepError, conformanceSteps, type Step, type StepContext, type StepResult, type Steps } from './steps.js'
// The merge engine (src/server/merge.ts) stays inside: a store author gives defineStore a
// backend, and the merge, the rules and the owner check come with it.
export type { SessionChange, SessionHead } from './merge.js'
export { defineStore, type ValueCodec, type DefineStoreOptions } from './stores/define.js'
export type { StoredSession } from './stores/stored.js'
export { memoryStore } from './stores/memory.js'
export { fileStore } from './stores/file.js'
export { sqliteStore, type SqliteStoreOptions } from './stores/sqlite.js'
export { openStore } from './stores/open.js'
export { postgresStore, CHANGE_CHANNEL, type PostgresStoreOptions, type PostgresPoolOptions } from './stores/postgres.js'
export { encryptedStore, type EncryptedStoreOptions } from './stores/encrypted.js'
export { newKeyBase64, type KeyMaterial, type WebCryptoKey } from '../shared/crypto.js'
export type {
  SessionStore,
  StoreBackend,
  CurrentSession,
  Write,
  ApplyResult,
  ApplyOptions,
  AccessOptions,
  Caller,
  CreateOptions,
  ChangeListener,
  ListOptions,
  StoreOptions,
  WorkflowState,
} from './stores/types.js'
export type { SessionSchema, StandardSchemaV1 } from '../shared/schema.js'
export { scopeWorkflow, type Workflow, type SubflowFrame, type VariableAccess } from '../shared/workflow.js'
export { workflowDataKey, workflowSlotKey, workflowPrefix, parseWorkflowKey } from '../shared/workflow-keys.js'
export { serve, toNodeListener, type FetchHandler, type ServeOptions, type RunningServer } from './node.js'
export type * from '../shared/protocol.js'
