// As create-next-app@latest writes it for Next.js 16, less Tailwind's loader rule (and less its
// `import type { NextConfig } from 'next'`, so that the repository's own type check does not
// need this app's node_modules).
const nextConfig = {
  cacheComponents: true,
  partialPrefetching: true,
}

export default nextConfig
