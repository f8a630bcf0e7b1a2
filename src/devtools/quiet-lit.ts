// lit-html's development build (what Vite and other dev servers load) writes "Lit is in dev mode"
// to the console once per page. The devtools show only in development, so that line would be
// noise in every app that shows them: it is marked as said before lit-html loads (panel.ts
// imports this module first; package.json lists it among the modules with side effects).
const warned = ((globalThis as { litIssuedWarnings?: Set<string> }).litIssuedWarnings ??= new Set<string>())
warned.add('dev-mode')
