import { useSessions } from 'workflow-session'

/** The person's sessions: pick one up again, start afresh, or delete one. */
export function Sessions() {
  const { sessions, currentId, open, start, remove } = useSessions()
  return (
    <div>
      <ul aria-label="Sessions">
        {sessions.map((session) => (
          <li key={session.sessionId}>
            <code>{session.sessionId.slice(0, 8)}</code> — changed {new Date(session.updatedAt).toLocaleString()}
            {session.sessionId === currentId ? (
              ' (this one)'
            ) : (
              <button type="button" className="secondary" onClick={() => open(session.sessionId)}>
                Open {session.sessionId.slice(0, 8)}
              </button>
            )}{' '}
            <button type="button" className="secondary" onClick={() => void remove(session.sessionId)}>
              Delete {session.sessionId.slice(0, 8)}
            </button>
          </li>
        ))}
      </ul>
      <button type="button" onClick={() => start()}>
        Start a new session
      </button>
    </div>
  )
}
