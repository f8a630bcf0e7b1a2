import { useRun, useWorkflow } from 'workflow-session'

export interface RegisterOutput {
  message: string
}

export interface SignupData {
  email: string
  /** Schema version 1's name of the field; version 2 calls it `fullName` (demo/schema.ts). */
  name: string
  fullName: string
  registeredEmail: string
}

/** The sign-up workflow: two fields saved as you type, and a Run button that the server answers. */
export function SignupForm({ schemaVersion = 1 }: { schemaVersion?: number }) {
  const nameField = schemaVersion >= 2 ? 'fullName' : 'name'
  const signup = useWorkflow<SignupData>('signup')
  const { run, isRunning, output, error } = useRun<RegisterOutput>('register')
  const registeredEmail = signup.get('registeredEmail')
  return (
    <form
      aria-label="Sign up"
      onSubmit={(event) => {
        event.preventDefault()
        run()
      }}
    >
      <label>
        Email
        <input type="email" value={signup.get('email', '')} onChange={(event) => signup.set('email', event.target.value)} />
      </label>
      <label>
        {nameField === 'fullName' ? 'Full name' : 'Name'}
        <input value={signup.get(nameField, '')} onChange={(event) => signup.set(nameField, event.target.value)} />
      </label>
      <button type="submit" disabled={isRunning}>
        {isRunning ? 'Registering…' : 'Register'}
      </button>
      {output ? <p role="note">{output.message}</p> : registeredEmail && <p role="note">Registered as {registeredEmail}.</p>}
      {error && <p role="alert">Could not register: {error.message}</p>}
    </form>
  )
}
