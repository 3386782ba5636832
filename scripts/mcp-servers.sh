#!/usr/bin/env bash
# Installs the real MCP servers Clara's MCP tests run, pinned, into
# $CLARA_MCP_FIXTURES (default: ${XDG_CACHE_HOME:-~/.cache}/clara/mcp-fixtures).
# Idempotent: what is in place at the pinned version is kept.
#
#   npm:  @modelcontextprotocol/server-everything, @modelcontextprotocol/server-filesystem
#   PyPI: mcp-server-time (brings the `mcp` package the streamable-HTTP fixture is written with)
set -euo pipefail

dir="${CLARA_MCP_FIXTURES:-${XDG_CACHE_HOME:-$HOME/.cache}/clara/mcp-fixtures}"
python="${PYTHON:-python3}"
npm_pkgs=("@modelcontextprotocol/server-everything@2026.8.31" "@modelcontextprotocol/server-filesystem@2026.8.31")
py_pkgs=("mcp-server-time==2026.10.19" "mcp==2.3.0")

die() { echo "mcp-servers: $*" >&2; exit 1; }
mkdir -p "$dir"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  command -v apt-get >/dev/null || die "node and npm are needed for the npm MCP servers"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi
want_npm=$(printf '%s\n' "${npm_pkgs[@]}")
if [ "$(cat "$dir/npm.installed" 2>/dev/null)" != "$want_npm" ] \
  || [ ! -f "$dir/node/node_modules/@modelcontextprotocol/server-everything/dist/index.js" ]; then
  mkdir -p "$dir/node"
  # --ignore-scripts: nothing of a package runs at install time.
  npm install --prefix "$dir/node" --ignore-scripts --no-audit --no-fund --silent "${npm_pkgs[@]}"
  printf '%s\n' "$want_npm" > "$dir/npm.installed"
fi

want_py=$(printf '%s\n' "${py_pkgs[@]}")
if [ "$(cat "$dir/py.installed" 2>/dev/null)" != "$want_py" ] || [ ! -x "$dir/venv/bin/mcp-server-time" ]; then
  if ! "$python" -m venv --help >/dev/null 2>&1 && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
  fi
  "$python" -m venv "$dir/venv" || die "python3 -m venv failed (Debian: apt-get install python3-venv)"
  "$dir/venv/bin/python" -m pip install --quiet --disable-pip-version-check "${py_pkgs[@]}"
  printf '%s\n' "$want_py" > "$dir/py.installed"
fi
echo "MCP servers in $dir"
