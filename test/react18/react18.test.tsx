// @vitest-environment jsdom
// Runs only in the react18 project: proves the test/react files there really ran on React 18.3,
// with the libraries that import React sharing that one copy.
import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query'
import { act, cleanup, render, screen } from '@testing-library/react'
import { useState, version } from 'react'
import { version as domVersion } from 'react-dom'
import { renderToString, version as serverVersion } from 'react-dom/server'
import { useDebouncedCallback } from 'use-debounce'
import { afterEach, expect, it } from 'vitest'

afterEach(cleanup)

it('imports React, ReactDOM and its server renderer at 18.3', () => {
  expect(version).toMatch(/^18\.3\./)
  expect(domVersion).toMatch(/^18\.3\./)
  expect(serverVersion).toMatch(/^18\.3\./)
})

it('renders @tanstack/react-query and use-debounce hooks under that same React', async () => {
  // A hook from another copy of React would throw "Invalid hook call" (and print it).
  function Probe() {
    const [text, setText] = useState('waiting')
    const save = useDebouncedCallback(setText, 1)
    const { data } = useQuery({ queryKey: ['probe'], queryFn: () => Promise.resolve('fetched') })
    return (
      <button type="button" onClick={() => save('debounced')}>
        {data ?? 'loading'} {text}
      </button>
    )
  }
  const client = new QueryClient()
  render(
    <QueryClientProvider client={client}>
      <Probe />
    </QueryClientProvider>,
  )
  expect(await screen.findByText('fetched waiting')).toBeTruthy()
  await act(async () => {
    screen.getByRole('button').click()
    await new Promise((resolve) => setTimeout(resolve, 20))
  })
  expect(screen.getByRole('button').textContent).toBe('fetched debounced')
  client.clear()
})

it('renders those hooks on the server too', () => {
  function Probe() {
    const { status } = useQuery({ queryKey: ['server'], queryFn: () => 'never on the server' })
    return <p>{status}</p>
  }
  const html = renderToString(
    <QueryClientProvider client={new QueryClient()}>
      <Probe />
    </QueryClientProvider>,
  )
  expect(html).toBe('<p>pending</p>')
})
