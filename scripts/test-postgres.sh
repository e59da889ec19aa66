#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the test suite and print its SQLAlchemy URL.
# Usage: eval "$(scripts/test-postgres.sh start)"  →  exports PROCPLAN_TEST_PG_URL
#        scripts/test-postgres.sh stop
# Needs PostgreSQL's server binaries (Debian: apt-get install postgresql). Runs the server as
# the 'postgres' user when invoked as root (PostgreSQL refuses to run as root).
set -euo pipefail
PGPORT="${PROCPLAN_TEST_PG_PORT:-55432}"
PGDATA_DIR="${PROCPLAN_TEST_PG_DIR:-/tmp/procplan-test-pg}"

find_bin() {
  local name="$1"
  if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return; fi
  ls -d /usr/lib/postgresql/*/bin/"$name" 2>/dev/null | sort -V | tail -n 1
}

as_pg() {
  if [ "$(id -u)" = "0" ]; then su postgres -s /bin/bash -c "$*"; else bash -c "$*"; fi
}

start() {
  local initdb pg_ctl
  initdb="$(find_bin initdb)"; pg_ctl="$(find_bin pg_ctl)"
  if [ -z "$initdb" ] || [ -z "$pg_ctl" ]; then
    echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1
  fi
  if [ "$(id -u)" = "0" ]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql postgres
  fi
  if [ ! -f "$PGDATA_DIR/PG_VERSION" ]; then
    rm -rf "$PGDATA_DIR"; mkdir -p "$PGDATA_DIR"
    [ "$(id -u)" = "0" ] && chown postgres "$PGDATA_DIR"
    as_pg "'$initdb' -D '$PGDATA_DIR' -U procplan --auth=trust -E UTF8 >/dev/null"
  fi
  if ! as_pg "'$pg_ctl' -D '$PGDATA_DIR' status >/dev/null 2>&1"; then
    as_pg "'$pg_ctl' -D '$PGDATA_DIR' -l '$PGDATA_DIR/server.log' -w -o '-p $PGPORT -k /tmp -c listen_addresses=127.0.0.1 -c fsync=off' start >/dev/null" \
      || { cat "$PGDATA_DIR/server.log" >&2; exit 1; }
  fi
  echo "export PROCPLAN_TEST_PG_URL=postgresql+psycopg://procplan@127.0.0.1:$PGPORT/postgres"
}

stop() {
  local pg_ctl; pg_ctl="$(find_bin pg_ctl)"
  [ -f "$PGDATA_DIR/PG_VERSION" ] && as_pg "'$pg_ctl' -D '$PGDATA_DIR' -m fast stop >/dev/null" || true
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
