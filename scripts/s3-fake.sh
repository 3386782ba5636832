#!/usr/bin/env bash
# Installs s3rver, the S3-compatible fake that clara-files' S3 tests
# (`cargo test -p clara-files --features s3`) start, pinned, into
# $CLARA_S3RVER_DIR (default: ${XDG_CACHE_HOME:-~/.cache}/clara/s3rver).
# Idempotent: an install at the pinned version is kept.
#
# The tests run `node $CLARA_S3RVER_DIR/node_modules/s3rver/bin/s3rver.js`
# themselves, on a free port, with the keys S3RVER/S3RVER.
set -euo pipefail

dir="${CLARA_S3RVER_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/clara/s3rver}"
pkg="s3rver@3.7.1"
entry="$dir/node_modules/s3rver/bin/s3rver.js"

die() { echo "s3-fake: $*" >&2; exit 1; }

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  command -v apt-get >/dev/null || die "node and npm are needed to install $pkg"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nodejs npm
fi

if [ "$(cat "$dir/installed" 2>/dev/null)" != "$pkg" ] || [ ! -f "$entry" ]; then
  mkdir -p "$dir"
  # --ignore-scripts: nothing of a package runs at install time (s3rver is plain JavaScript).
  npm install --prefix "$dir" --ignore-scripts --no-audit --no-fund --silent "$pkg" \
    || die "npm could not install $pkg into $dir"
  [ -f "$entry" ] || die "$pkg installed, but $entry is missing"
  printf '%s\n' "$pkg" > "$dir/installed"
fi
echo "s3rver ($pkg) in $dir"
