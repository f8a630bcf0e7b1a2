'use client'

// workflow-session/devtools: the panel (framework-free, and as a React component), the
// inspector it reads, and the redacted report. Nothing here is in an app that does not import it.
export type { ClientInternals, ClientProbe, FeedChange, ProbeEvent } from '../client/probe.js'
export {
  type Faults,
  type FeedState,
  type InspectedPatch,
  type InspectedVariable,
  type InspectorEvent,
  inspectSession,
  type LeftByPage,
  type SessionInspection,
  type SessionInspector,
  type VariableState,
} from './inspector.js'
export { mountSessionDevtools } from './mount.js'
export type { DevtoolsOptions } from './panel.js'
export { type DevtoolsReport, devtoolsReport } from './report.js'
export { SessionDevtools, type SessionDevtoolsProps } from './SessionDevtools.js'
