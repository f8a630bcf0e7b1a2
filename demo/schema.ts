// The demo's schema, one declaration for the server's store and the page (docs/schema-versions.md).
// Version 1 asks for a "Name"; version 2 calls the same field "Full name" (`fullName`), and its
// migration renames what sessions, devices and queued edits hold under the old name.
// DEMO_SCHEMA_VERSION=2 npm start serves version 2: start the demo at 1, type, stop it, start it at 2.
import { defineMigrations, type Migrations, workflowDataKey } from 'workflow-session/client'

const demoMigrations: Migrations = defineMigrations({
  version: 2,
  migrations: [{ to: 2, steps: [{ op: 'rename', from: workflowDataKey('signup', 'name'), to: workflowDataKey('signup', 'fullName') }] }],
})

/** The schema of the version served: none at 1 (nothing to migrate), the declaration at 2. */
export const demoSchema = (version: number): Migrations | undefined => (version >= 2 ? demoMigrations : undefined)
