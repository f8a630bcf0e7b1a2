/**
 * Imports an optional database driver (`pg`, `better-sqlite3`) when a store is opened: Node
 * finds it at run time in the app's node_modules, and no bundler looks for it at build time.
 * Turbopack (the default of Next.js 16) and Vite resolve a literal `import('pg')` while they
 * build, which fails the build of an app that uses another store and left that driver out. Here
 * the name is a variable, and the comments tell webpack, Turbopack and Vite to leave the
 * `import()` as it is (esbuild leaves an `import()` of a variable alone).
 *
 * `Driver` is what the package exports (`typeof import('pg')`); the drivers are CommonJS
 * modules, so that is the namespace's `default`.
 *
 * @example
 * const { default: pg } = await importDriver<typeof import('pg')>('pg')
 */
export function importDriver<Driver>(name: string): Promise<{ default: Driver }> {
  return import(/* webpackIgnore: true */ /* turbopackIgnore: true */ /* @vite-ignore */ name) as Promise<{ default: Driver }>
}
