#!/usr/bin/env bash
# Runs before `npm test`: makes sure what the tests need is here — Debian's Chromium, and a
# PostgreSQL server that answers at DATABASE_URL (default postgres://postgres:postgres@127.0.0.1:5432/postgres).
# As root on Debian (CI, a new machine) it installs and starts what is missing; elsewhere it says
# what to do. Idempotent: a second run changes nothing.
set -euo pipefail

can_install=
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then can_install=1; fi
apt_updated=
install() {
  [ -n "$apt_updated" ] || { apt-get update -qq; apt_updated=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

chromium=${CHROMIUM_PATH:-/usr/bin/chromium}
if [ ! -x "$chromium" ]; then
  if [ -n "$can_install" ]; then
    echo "test-env: installing Debian's chromium (browser tests)"
    install chromium
  else
    echo "test-env: no Chromium at $chromium: install Debian's chromium, or set CHROMIUM_PATH" >&2
  fi
fi

if [ -z "${DATABASE_URL:-}" ]; then
  if ! command -v pg_lsclusters >/dev/null 2>&1; then
    if [ -n "$can_install" ]; then
      echo "test-env: installing Debian's postgresql (PostgreSQL store tests)"
      install postgresql
    else
      echo "test-env: no PostgreSQL: install Debian's postgresql, or set DATABASE_URL" >&2
      exit 0
    fi
  fi
  cluster=$(pg_lsclusters --no-header | awk 'NR == 1 { print $1 " " $2 }')
  if [ -n "$cluster" ] && [ -n "$can_install" ]; then
    # shellcheck disable=SC2086
    pg_ctlcluster --skip-systemctl-redirect $cluster start >/dev/null 2>&1 || true
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  fi
fi

# --- React 18 for the react18 vitest project ------------------------------------------------
# test/react18/node_modules comes from its own lockfile. `npm ci` runs only when that lockfile
# differs from the copy stamped after the last install (so a second run changes nothing).
react18="$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/react18" && pwd)"
if ! cmp -s "$react18/package-lock.json" "$react18/node_modules/.installed-package-lock.json"; then
  echo "test-env: installing React 18 in test/react18 (react18 tests)"
  if npm ci --prefix "$react18" --no-audit --no-fund --loglevel=error; then
    cp "$react18/package-lock.json" "$react18/node_modules/.installed-package-lock.json"
  else
    echo "test-env: npm ci in $react18 failed: the react18 tests cannot run" >&2
  fi
fi
# --- end React 18 ----------------------------------------------------------------------------

# --- Next.js fixture app (test/e2e/next.e2e.test.ts) ------------------------------------------
# test/e2e/next-app/node_modules (next 15, react 19, typescript 5) comes from its own lockfile;
# the test copies the folder and installs the packed package into the copy. `npm ci` runs only
# when that lockfile differs from the copy stamped after the last install.
next_app="$(cd "$(dirname "${BASH_SOURCE[0]}")/../test/e2e/next-app" && pwd)"
if ! cmp -s "$next_app/package-lock.json" "$next_app/node_modules/.installed-package-lock.json"; then
  echo "test-env: installing the Next.js fixture's dependencies in test/e2e/next-app (Next.js test)"
  if npm ci --prefix "$next_app" --no-audit --no-fund --loglevel=error; then
    cp "$next_app/package-lock.json" "$next_app/node_modules/.installed-package-lock.json"
  else
    echo "test-env: npm ci in $next_app failed: the Next.js test cannot run" >&2
  fi
fi
# --- end Next.js fixture ---------------------------------------------------------------------
