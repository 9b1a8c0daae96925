#!/usr/bin/env bash
# A private PostgreSQL server on 127.0.0.1 for the tests and the bench (Dagster run, event and
# schedule storage on a real server; docs/dagster.postgres.yaml).
#
#   bash scripts/postgres.sh install      # Debian's postgresql via apt-get (idempotent; root only)
#   bash scripts/postgres.sh start DIR    # initdb DIR/data, start on a free port, write DIR/env
#   bash scripts/postgres.sh stop DIR     # stop it (the data dir stays; delete DIR yourself)
#
# DIR/env holds the DAGSTER_PG_* variables the config reads (source it). The server listens on
# 127.0.0.1 only, with a password (scram-sha-256, as a real deployment would), its socket in DIR.
# Debian's postgres refuses to run as root: as root the server runs as the `postgres` user and
# DIR is handed to it.
#
# Exit codes: 0 done; 2 PostgreSQL not installed and cannot be (not root, no apt-get): callers
# skip the Postgres tests; 1 anything else (a failed install or start).
set -uo pipefail

PG_USER=quantlab
START_TIMEOUT=60  # seconds pg_ctl waits for the server to accept connections

pg_bindir() {
  # Debian keeps the server binaries off PATH, one directory per major version; take the newest.
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
  if [ -n "$dir" ] && [ -x "$dir/initdb" ]; then echo "$dir"; return 0; fi
  dir="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
  [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  return 1
}

install() {
  if pg_bindir >/dev/null; then
    echo "postgres: present ($("$(pg_bindir)/postgres" --version))"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "postgres: NOTE: apt-get not available; install PostgreSQL to run the Postgres tests (they will be skipped)."
    return 2
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "postgres: NOTE: not root; run 'sudo apt-get install postgresql' to run the Postgres tests (they will be skipped)."
    return 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update && apt-get install -y --no-install-recommends postgresql && pg_bindir >/dev/null; then
    echo "postgres: installed $("$(pg_bindir)/postgres" --version)"
    return 0
  fi
  echo "postgres: ERROR: could not install postgresql with apt-get" >&2
  return 1
}

# Run a server binary as the user who owns the data dir (postgres when we are root).
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir="${1:?usage: postgres.sh start DIR}" bindir port password
  bindir="$(pg_bindir)" || { echo "postgres: NOTE: PostgreSQL not installed (bash scripts/postgres.sh install)."; return 2; }
  mkdir -p "$dir" && dir="$(cd "$dir" && pwd)"
  if [ "$(id -u)" -eq 0 ]; then
    getent passwd postgres >/dev/null || { echo "postgres: ERROR: running as root but no 'postgres' user" >&2; return 1; }
    chown postgres "$dir"
    chmod 700 "$dir"
  fi
  if [ ! -s "$dir/data/PG_VERSION" ]; then
    password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    (umask 077; echo "$password" > "$dir/pwfile")
    [ "$(id -u)" -eq 0 ] && chown postgres "$dir/pwfile"
    as_owner "$bindir/initdb" -D "$dir/data" -U "$PG_USER" --pwfile="$dir/pwfile" --auth-local=scram-sha-256 \
      --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { echo "postgres: ERROR: initdb failed:" >&2; tail -20 "$dir/initdb.log" >&2; return 1; }
  fi
  if [ -s "$dir/env" ] && as_owner "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    echo "postgres: already running ($(grep PORT "$dir/env"))"
    return 0
  fi
  password="$(cat "$dir/pwfile")"
  # A free port can be taken between the probe and the bind: a few tries, each bounded by pg_ctl -t.
  local attempt
  for attempt in 1 2 3; do
    port="$(free_port)"
    if as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t "$START_TIMEOUT" \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir" start >/dev/null; then
      (umask 077; cat > "$dir/env") <<EOF
export DAGSTER_PG_HOST=127.0.0.1
export DAGSTER_PG_PORT=$port
export DAGSTER_PG_USERNAME=$PG_USER
export DAGSTER_PG_PASSWORD=$password
export DAGSTER_PG_DB=postgres
EOF
      echo "postgres: server $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data $dir/data)"
      return 0
    fi
    echo "postgres: start attempt $attempt on port $port failed; retrying" >&2
  done
  echo "postgres: ERROR: the server did not start:" >&2
  tail -20 "$dir/server.log" >&2
  return 1
}

stop() {
  local dir="${1:?usage: postgres.sh stop DIR}" bindir
  bindir="$(pg_bindir)" || return 0
  [ -f "$dir/data/postmaster.pid" ] || return 0
  as_owner "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t "$START_TIMEOUT" stop >/dev/null \
    && echo "postgres: stopped ($dir)"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 64 ;;
esac
