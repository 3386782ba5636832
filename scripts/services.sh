#!/usr/bin/env bash
# The services Clara's tests use, checked and started: PostgreSQL (with the
# pgvector extension), Redis and NATS, all on 127.0.0.1 at their usual ports.
#
# On the project's machines they are already running and this takes well under a
# second. A service that is down is started with the commands of
# shared/SERVICES.md; one that is missing is installed from Debian (as root).
# pgvector is no Debian bookworm binary package: it is built from Debian trixie's
# source package against postgresql-server-dev, with the trixie source list kept
# in a private apt state so the system's package lists are untouched.
#
# Idempotent. Exits non-zero with a sentence when a service cannot be made ready.
set -euo pipefail

PG_HOST=127.0.0.1
PG_PORT=5432
REDIS_PORT=6379
NATS_PORT=4222
# Where the private apt state and the pgvector build live.
WORK=${CLARA_SERVICES_DIR:-/var/tmp/clara-services}

say() { printf '  %s\n' "$*"; }
fail() { printf 'services: %s\n' "$*" >&2; exit 1; }

need_root() {
  [ "$(id -u)" = 0 ] || fail "$1 needs root (run this script as root, or do it by hand: $2)"
}

# Runs a noisy command with its output in $WORK/log, shown only when it fails.
quietly() {
  mkdir -p "$WORK"
  if ! "$@" >"$WORK/log" 2>&1; then
    tail -n 20 "$WORK/log" >&2
    return 1
  fi
}

# Installs Debian packages, refreshing the package lists once if they are stale.
apt_install() {
  need_root "installing $*" "apt-get install $*"
  export DEBIAN_FRONTEND=noninteractive
  quietly apt-get install -y -q --no-install-recommends "$@" ||
    { quietly apt-get update -q && quietly apt-get install -y -q --no-install-recommends "$@"; } ||
    fail "could not install $* with apt-get"
}

# Waits up to 30 s for a command to succeed.
wait_for() {
  local what=$1; shift
  for _ in $(seq 1 60); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  fail "$what did not come up within 30 s"
}

tcp_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

pg_major() { ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1; }

psql_q() { psql -h "$PG_HOST" -p "$PG_PORT" -U postgres -d postgres -Atqc "$1"; }

ensure_postgres() {
  if pg_isready -q -h "$PG_HOST" -p "$PG_PORT" 2>/dev/null; then
    say "PostgreSQL is up on $PG_HOST:$PG_PORT"
  else
    if [ -z "$(pg_major)" ]; then
      say "PostgreSQL is not installed: installing it"
      apt_install postgresql
    fi
    local v; v=$(pg_major)
    say "PostgreSQL $v is down: starting cluster main"
    need_root "starting PostgreSQL" "pg_ctlcluster --skip-systemctl-redirect $v main start"
    pg_ctlcluster --skip-systemctl-redirect "$v" main start || true
    wait_for "PostgreSQL" pg_isready -q -h "$PG_HOST" -p "$PG_PORT"
    say "PostgreSQL is up"
  fi
  # The tests' database (trust authentication on 127.0.0.1 is assumed, as on the
  # project's machines; elsewhere set CLARA_TEST_POSTGRES_URL with credentials).
  if [ "$(psql_q "SELECT 1 FROM pg_database WHERE datname = 'test'" 2>/dev/null)" != 1 ]; then
    psql_q "CREATE DATABASE test" >/dev/null || fail "could not create the database 'test'"
    say "created the database 'test'"
  fi
}

vector_available() {
  [ "$(psql_q "SELECT 1 FROM pg_available_extensions WHERE name = 'vector'" 2>/dev/null)" = 1 ]
}

# The Debian mirror the system already uses (deb822 sources), for trixie's sources.
debian_mirror() {
  local f=/etc/apt/sources.list.d/debian.sources
  [ -r "$f" ] || fail "cannot read $f to find the Debian mirror"
  awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f"
}

ensure_pgvector() {
  if vector_available; then
    say "pgvector is available"
    return
  fi
  local v; v=$(pg_major)
  need_root "installing pgvector" "see shared/SERVICES.md, row 1"
  say "pgvector is missing: building it from Debian trixie's source package"
  command -v make >/dev/null && command -v gcc >/dev/null || apt_install make gcc
  [ -x "/usr/lib/postgresql/$v/bin/pg_config" ] &&
    [ -d "/usr/include/postgresql/$v/server" ] || apt_install "postgresql-server-dev-$v"

  # A private apt state: its own source list, lists and cache. The system's
  # /var/lib/apt/lists is neither read nor written.
  local apt="$WORK/apt"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$WORK/src"
  local mirror; mirror=$(debian_mirror)
  [ -n "$mirror" ] || fail "found no Debian mirror in /etc/apt/sources.list.d/debian.sources"
  echo "deb-src $mirror trixie main" >"$apt/sources.list"
  local opts=(-o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
    -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache" -o APT::Sandbox::User=root -q)
  quietly apt-get "${opts[@]}" update || fail "could not read trixie's sources from $mirror"
  rm -rf "$WORK/src" && mkdir -p "$WORK/src"
  (cd "$WORK/src" && quietly apt-get "${opts[@]}" source --download-only pgvector) ||
    fail "could not download pgvector's source package"
  local orig; orig=$(ls "$WORK"/src/pgvector_*.orig.tar.* | head -n 1)
  tar -xf "$orig" -C "$WORK/src"
  local dir; dir=$(find "$WORK/src" -mindepth 1 -maxdepth 1 -type d -name 'pgvector*' | head -n 1)
  # The Makefile defaults to -march=native, which would tie the build to this CPU.
  quietly make -C "$dir" OPTFLAGS="" PG_CONFIG="/usr/lib/postgresql/$v/bin/pg_config" ||
    fail "building pgvector failed (in $dir)"
  quietly make -C "$dir" OPTFLAGS="" PG_CONFIG="/usr/lib/postgresql/$v/bin/pg_config" install ||
    fail "installing pgvector failed"
  vector_available || fail "pgvector was installed but PostgreSQL does not list it"
  say "pgvector $(basename "$orig" | sed 's/pgvector_\(.*\)\.orig.*/\1/') installed"
}

ensure_redis() {
  if [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; then
    say "Redis is up on 127.0.0.1:$REDIS_PORT"
    return
  fi
  command -v redis-server >/dev/null || { say "Redis is not installed: installing it"; apt_install redis-server redis-tools; }
  say "Redis is down: starting it"
  mkdir -p /var/lib/redis /var/log/redis
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port "$REDIS_PORT" --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
  wait_for "Redis" sh -c "[ \"\$(redis-cli -h 127.0.0.1 -p $REDIS_PORT ping)\" = PONG ]"
  say "Redis is up"
}

ensure_nats() {
  if tcp_open 127.0.0.1 "$NATS_PORT"; then
    say "NATS is up on 127.0.0.1:$NATS_PORT"
    return
  fi
  [ -x /usr/sbin/nats-server ] || { say "NATS is not installed: installing it"; apt_install nats-server; }
  say "NATS is down: starting it (JetStream on)"
  mkdir -p /var/lib/nats-server
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p "$NATS_PORT" -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_for "NATS" tcp_open 127.0.0.1 "$NATS_PORT"
  say "NATS is up"
}

ensure_postgres
ensure_pgvector
ensure_redis
ensure_nats
