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
# The Next.js fixture app (next 16, react 19, typescript 5): test/e2e/next.e2e.test.ts copies the
# folder, writes the recipe's files from docs/backends/nextjs.md into the copy and installs the
# packed package there.
npm_ci_once test/e2e/next-app "Next.js test"
# --- end folders with a lockfile of their own ------------------------------------------------

# --- Python package (python/: pytest on Python 3.11 and 3.13, the type checks, and the Python server's conformance and Chromium tests) ---
# python/.venv (Python 3.11) and python/.venv-3.13: virtualenvs with the pinned test dependencies
# of python/requirements-test.txt, then the package the way a user installs it: `python -m build`
# makes its sdist and wheel in python/dist, and each virtualenv installs that wheel (not the
# source folder: the tests see what a user gets). Each step runs only when its input differs from
# the stamp its last run left: the requirements file, and a hash of the package's sources (one
# build for both virtualenvs). An interpreter is pythonX.Y on PATH, else pyenv's, else /usr/bin's.
# python/typecheck: the pinned pyright that type-checks the docs' Python examples.
python_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/../python" && pwd)"

python_of() { # X.Y: prints the path of a Python X.Y interpreter, or fails
  local version=$1 candidate pyenv_root
  local candidates=("python$version" python3)
  pyenv_root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  # pyenv's installs of X.Y, the newest first (3.13.10 before 3.13.9).
  while IFS= read -r candidate; do candidates+=("$candidate"); done < <(
    find "$pyenv_root/versions" -maxdepth 3 -path "*/versions/$version.*/bin/python$version" 2>/dev/null | sort -rV
  )
  candidates+=("/usr/bin/python$version" "/usr/local/bin/python$version")
  for candidate in "${candidates[@]}"; do
    # A pyenv shim of a version that is not selected is on PATH but fails: ask each one.
    if [ "$("$candidate" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" = "$version" ]; then
      command -v "$candidate"
      return 0
    fi
  done
  return 1
}

python_venv() { # X.Y, folder: the virtualenv with the test dependencies; fails, saying why, when it cannot be made
  local version=$1 venv=$2 interpreter
  if [ "$("$venv/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)" != "$version" ] \
    || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    if ! interpreter=$(python_of "$version"); then
      echo "test-env: no Python $version (looked for python$version and python3 on PATH, in pyenv's versions and in /usr/bin): the Python $version tests cannot run; install Python $version (e.g. pyenv install $version)" >&2
      return 1
    fi
    if ! "$interpreter" -c 'import ensurepip, venv' >/dev/null 2>&1; then
      if [ -n "$can_install" ] && [ "$interpreter" = "/usr/bin/python$version" ]; then
        echo "test-env: installing Debian's python$version-venv (Python package tests)"
        install "python$version-venv"
      else
        echo "test-env: $interpreter cannot make a virtualenv: install its venv module (Debian: python$version-venv)" >&2
        return 1
      fi
    fi
    echo "test-env: making the virtualenv python/${venv##*/} with Python $version ($interpreter)"
    rm -rf "$venv"
    "$interpreter" -m venv "$venv" || { echo "test-env: $interpreter -m venv failed: the Python $version tests cannot run" >&2; return 1; }
  fi
  if ! cmp -s "$python_dir/requirements-test.txt" "$venv/.installed-requirements-test.txt"; then
    echo "test-env: installing the Python test dependencies into python/${venv##*/} (python/requirements-test.txt)"
    if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$python_dir/requirements-test.txt"; then
      cp "$python_dir/requirements-test.txt" "$venv/.installed-requirements-test.txt"
    else
      echo "test-env: pip install -r python/requirements-test.txt failed in python/${venv##*/}: the Python $version tests cannot run" >&2
      return 1
    fi
  fi
}

python_venvs=()
python_venv 3.11 "$python_dir/.venv" && python_venvs+=("$python_dir/.venv")
python_venv 3.13 "$python_dir/.venv-3.13" && python_venvs+=("$python_dir/.venv-3.13")

if [ "${#python_venvs[@]}" -gt 0 ]; then
  sources=$(cd "$python_dir" && find pyproject.toml README.md MANIFEST.in src -type f ! -path '*/__pycache__/*' ! -path '*.egg-info/*' | LC_ALL=C sort | xargs sha256sum | sha256sum)
  dist="$python_dir/dist"
  if [ "$sources" != "$(cat "$dist/.built-sources" 2>/dev/null)" ]; then
    echo "test-env: building the Python package (python -m build: its sdist and wheel in python/dist)"
    rm -rf "$dist"
    # Isolated, as a user's build, with the setuptools pinned in the requirements file.
    if build_log=$(cd "$python_dir" && PIP_CONSTRAINT="$python_dir/requirements-test.txt" "${python_venvs[0]}/bin/python" -m build --outdir "$dist" . 2>&1); then
      echo "$sources" >"$dist/.built-sources"
    else
      echo "$build_log" >&2
      echo "test-env: python -m build failed: the Python tests cannot run" >&2
    fi
  fi
  wheel=$(find "$dist" -maxdepth 1 -name 'workflow_session-*.whl' 2>/dev/null | head -n 1 || true)
  if [ -n "$wheel" ] && [ "$sources" = "$(cat "$dist/.built-sources" 2>/dev/null)" ]; then
    for venv in "${python_venvs[@]}"; do
      [ "$sources" = "$(cat "$venv/.installed-package" 2>/dev/null)" ] && continue
      echo "test-env: installing the Python package into python/${venv##*/} (pip install python/dist/${wheel##*/})"
      "$venv/bin/python" -m pip uninstall --quiet --disable-pip-version-check --yes workflow-session >/dev/null 2>&1 || true
      if "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "$wheel"; then
        echo "$sources" >"$venv/.installed-package"
      else
        echo "test-env: pip install python/dist/${wheel##*/} failed in python/${venv##*/}: the Python tests cannot run" >&2
      fi
    done
  fi
fi

npm_ci_once python/typecheck "type check of the docs' Python examples (pyright)"
# --- end Python package ------------------------------------------------------------------------
