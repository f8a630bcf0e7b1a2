import { useRun, useVariable } from 'workflow-session'

export interface RegisterOutput {
  message: string
}

/** A sign-up step: two fields saved as you type, and a Run button that the server answers. */
export function SignupForm() {
  const [email, setEmail] = useVariable<string>('email', '')
  const [name, setName] = useVariable<string>('name', '')
  const [registeredEmail] = useVariable<string>('registeredEmail')
  const { run, isRunning, output, error } = useRun<RegisterOutput>('register')
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
        <input type="email" value={email} onChange={(event) => setEmail(event.target.value)} />
      </label>
      <label>
        Name
        <input value={name} onChange={(event) => setName(event.target.value)} />
      </label>
      <button type="submit" disabled={isRunning}>
        {isRunning ? 'Registering…' : 'Register'}
      </button>
      {output ? <p role="note">{output.message}</p> : registeredEmail && <p role="note">Registered as {registeredEmail}.</p>}
      {error && <p role="alert">Could not register: {error.message}</p>}
    </form>
  )
}
