import { createSessionHandler, memoryStore } from 'workflow-session/server'

// One store for the life of the server process: every request of this route shares it.
const sessions = createSessionHandler({ store: memoryStore() })

export const GET = sessions
export const POST = sessions
export const DELETE = sessions
