// @vitest-environment jsdom
// Runs only in the oldest-peers project: proves the test files there really ran on the oldest
// version of each peer range (React 18.3, @tanstack/react-query 5.59, msw 2), with the libraries
// that import React sharing that one copy, and the package's own modules getting those copies.
import { QueryClient, QueryClientProvider, useQuery } from '@tanstack/react-query'
import queryPackage from '@tanstack/react-query/package.json' with { type: 'json' }
import { act, cleanup, render, screen } from '@testing-library/react'
import { http } from 'msw'
import mswPackage from 'msw/package.json' with { type: 'json' }
import { useState, version } from 'react'
import { version as domVersion } from 'react-dom'
import { renderToString, version as serverVersion } from 'react-dom/server'
import { useDebouncedCallback } from 'use-debounce'
import { afterEach, expect, it } from 'vitest'
import { sessionHandlers } from '../../src/msw.js'

afterEach(cleanup)

it('imports React, ReactDOM and its server renderer at 18.3', () => {
  expect(version).toMatch(/^18\.3\./)
  expect(domVersion).toMatch(/^18\.3\./)
  expect(serverVersion).toMatch(/^18\.3\./)
})

it('imports @tanstack/react-query 5.59 and msw 2, in the tests and in the package alike', () => {
  // Resolved through the same plugin as every bare import of the tests and of src/.
  expect(queryPackage.version).toMatch(/^5\.59\./)
  expect(mswPackage.version).toMatch(/^2\./)
  // The package's msw handlers are made by the msw these tests import (one copy).
  const [handler] = sessionHandlers()
  expect(handler).toBeInstanceOf(http.all('/probe', () => undefined).constructor)
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
