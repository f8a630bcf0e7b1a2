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
      # Only the PostgreSQL part is skipped: the blocks below must still run.
      echo "test-env: no PostgreSQL: install Debian's postgresql, or set DATABASE_URL" >&2
    fi
  fi
  cluster=
  if command -v pg_lsclusters >/dev/null 2>&1; then cluster=$(pg_lsclusters --no-header | awk 'NR == 1 { print $1 " " $2 }'); fi
  if [ -n "$cluster" ] && [ -n "$can_install" ]; then
    # shellcheck disable=SC2086
    pg_ctlcluster --skip-systemctl-redirect $cluster start >/dev/null 2>&1 || true
    su postgres -c "psql -q -c \"ALTER USER postgres PASSWORD 'postgres'\"" >/dev/null
  fi
fi

# --- Folders with a lockfile of their own (test/oldest-peers, test/package/compilers, test/e2e/next-app)
# `npm ci` runs in such a folder only when its lockfile differs from the copy stamped after the
# last install (so a second run changes nothing).
npm_ci_once() { # folder, what it is for
  local dir
  dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../$1" && pwd)"
  cmp -s "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json" && return 0
  echo "test-env: installing the dependencies of $1 ($2)"
  if npm ci --prefix "$dir" --no-audit --no-fund --loglevel=error; then
    cp "$dir/package-lock.json" "$dir/node_modules/.installed-package-lock.json"
  else
    echo "test-env: npm ci in $1 failed: the $2 cannot run" >&2
  fi
}
# The oldest version of each peer range (React 18.3, TanStack Query 5.59, msw 2) for the
# oldest-peers vitest project.
npm_ci_once test/oldest-peers "oldest-peers tests"
# TypeScript 6 and 7 as a user's compiler, for test/package/types.test.ts.
npm_ci_once test/package/compilers "packed-types tests on TypeScript 6 and 7"
# The Next.js fixture app (next 15, react 19, typescript 5): test/e2e/next.e2e.test.ts copies the
# folder and installs the packed package into the copy.
npm_ci_once test/e2e/next-app "Next.js test"
# --- end folders with a lockfile of their own ------------------------------------------------

# --- Python package (python/: pytest, and the Python server's conformance and Chromium tests) ---
# python/.venv: a virtualenv with the pinned test dependencies of python/requirements-test.txt,
# then the package the way a user installs it, `pip install ./python` (not editable: the tests
# see what a user gets). Each step runs only when its input differs from the stamp its last run
# left: the requirements file, and a hash of the package's sources.
python_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../python" && pwd)"
venv="$python_dir/.venv"
python_ok=1
if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
  if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ -n "$can_install" ]; then
      echo "test-env: installing Debian's python3-venv (Python package tests)"
      install python3-venv
    else
      echo "test-env: python3 cannot make a virtualenv: install Debian's python3-venv" >&2
      python_ok=
    fi
  fi
  if [ -n "$python_ok" ]; then
    echo "test-env: making the virtualenv python/.venv (Python package tests)"
    rm -rf "$venv"
    python3 -m venv "$venv" || { echo "test-env: python3 -m venv failed: the Python tests cannot run" >&2; python_ok=; }
  fi
fi
if [ -n "$python_ok" ] && ! cmp -s "$python_dir/requirements-test.txt" "$venv/.installed-requirements-test.txt"; then
  echo "test-env: installing the Python test dependencies (python/requirements-test.txt)"
  if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$python_dir/requirements-test.txt"; then
    cp "$python_dir/requirements-test.txt" "$venv/.installed-requirements-test.txt"
  else
    echo "test-env: pip install -r python/requirements-test.txt failed: the Python tests cannot run" >&2
    python_ok=
  fi
fi
if [ -n "$python_ok" ]; then
  sources=$(cd "$python_dir" && find pyproject.toml README.md src -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' | LC_ALL=C sort | xargs sha256sum | sha256sum)
  if [ "$sources" != "$(cat "$venv/.installed-package" 2>/dev/null)" ]; then
    echo "test-env: installing the Python package (pip install ./python)"
    if (cd "$python_dir/.." && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check ./python); then
      echo "$sources" >"$venv/.installed-package"
    else
      echo "test-env: pip install ./python failed: the Python tests cannot run" >&2
    fi
  fi
fi
# --- end Python package ------------------------------------------------------------------------
