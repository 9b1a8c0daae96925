#!/usr/bin/env bash
# A private Redis server on 127.0.0.1: the Celery broker and result backend for steps on workers
# (docs/scaling.md, "Steps on Celery workers").
#
#   bash scripts/redis.sh install      # Debian's redis-server via apt-get (idempotent; root only)
#   bash scripts/redis.sh start DIR    # start on a free port with its files in DIR, write DIR/env
#   bash scripts/redis.sh stop DIR     # stop it (delete DIR yourself)
#
# DIR/env holds QUANTLAB_CELERY_BROKER and QUANTLAB_CELERY_BACKEND (source it). The server listens
# on 127.0.0.1 only, with a password, no persistence (a broker's queue is rebuilt by re-running).
#
# Exit codes: 0 done; 2 Redis not installed and cannot be (not root, no apt-get): callers skip the
# Celery tests; 1 anything else (a failed install or start).
set -uo pipefail

START_TIMEOUT=30  # seconds to wait for the server to answer PING

install() {
  if command -v redis-server >/dev/null 2>&1; then
    echo "redis: present ($(redis-server --version | awk '{print $3}'))"
    return 0
  fi
  if ! command -v apt-get >/dev/null 2>&1; then
    echo "redis: NOTE: apt-get not available; install redis-server to run the Celery tests (they will be skipped)."
    return 2
  fi
  if [ "$(id -u)" -ne 0 ]; then
    echo "redis: NOTE: not root; run 'sudo apt-get install redis-server' to run the Celery tests (they will be skipped)."
    return 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  if apt-get update && apt-get install -y --no-install-recommends redis-server && command -v redis-server >/dev/null; then
    echo "redis: installed $(redis-server --version | awk '{print $3}')"
    return 0
  fi
  echo "redis: ERROR: could not install redis-server with apt-get" >&2
  return 1
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local dir="${1:?usage: redis.sh start DIR}" port password attempt waited
  command -v redis-server >/dev/null 2>&1 || { echo "redis: NOTE: redis-server not installed (bash scripts/redis.sh install)."; return 2; }
  mkdir -p "$dir" && dir="$(cd "$dir" && pwd)"
  if [ -s "$dir/env" ] && [ -s "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
    echo "redis: already running ($(grep BROKER "$dir/env"))"
    return 0
  fi
  password="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
  for attempt in 1 2 3; do
    port="$(free_port)"
    (umask 077; cat > "$dir/redis.conf") <<EOF2
bind 127.0.0.1
port $port
requirepass $password
daemonize yes
pidfile $dir/redis.pid
logfile $dir/redis.log
dir $dir
save ""
appendonly no
EOF2
    redis-server "$dir/redis.conf" || { echo "redis: start attempt $attempt failed" >&2; continue; }
    waited=0
    while [ "$waited" -lt "$START_TIMEOUT" ]; do
      if REDISCLI_AUTH="$password" redis-cli -h 127.0.0.1 -p "$port" ping 2>/dev/null | grep -q PONG; then
        (umask 077; cat > "$dir/env") <<EOF2
export QUANTLAB_CELERY_BROKER=redis://:$password@127.0.0.1:$port/0
export QUANTLAB_CELERY_BACKEND=redis://:$password@127.0.0.1:$port/1
EOF2
        echo "redis: server $(redis-server --version | awk '{print $3}') on 127.0.0.1:$port ($dir)"
        return 0
      fi
      sleep 1
      waited=$((waited + 1))
    done
    echo "redis: start attempt $attempt on port $port did not answer in ${START_TIMEOUT}s; retrying" >&2
    [ -s "$dir/redis.pid" ] && kill "$(cat "$dir/redis.pid")" 2>/dev/null
  done
  echo "redis: ERROR: the server did not start:" >&2
  tail -20 "$dir/redis.log" >&2 2>/dev/null
  return 1
}

stop() {
  local dir="${1:?usage: redis.sh stop DIR}" pid waited=0
  [ -s "$dir/redis.pid" ] || return 0
  pid="$(cat "$dir/redis.pid")"
  kill "$pid" 2>/dev/null || return 0
  while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt "$START_TIMEOUT" ]; do sleep 1; waited=$((waited + 1)); done
  echo "redis: stopped ($dir)"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 64 ;;
esac
