#!/usr/bin/env bash
# Start / stop / check a local redis-server (Debian's package, installed when missing),
# bound to 127.0.0.1, data and log under $SV_STATE_DIR/redis (default .state/redis).
#
#   scripts/redis.sh start|stop|status|wait|reset
#
# Idempotent. When REDIS_URL is set the caller brings its own Redis and nothing is started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${SV_STATE_DIR:-$ROOT/.state}"
PORT="${SV_REDIS_PORT:-6379}"
DIR="$STATE/redis"
PIDFILE="$DIR/redis.pid"

log() { echo "[redis] $*" >&2; }
external() { [ -n "${REDIS_URL:-}" ]; }

ensure_installed() {
  command -v redis-server >/dev/null && return
  log "installing redis-server from Debian's packages"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq redis-server >/dev/null
  # The package starts a system instance on 6379 where systemd runs; we run our own.
}

ping() { redis-cli -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }

wait_healthy() {
  local deadline=$((SECONDS + ${1:-30}))
  until ping; do
    [ $SECONDS -lt $deadline ] || { log "not healthy after ${1:-30}s"; tail -20 "$DIR/redis.log" >&2 || true; return 1; }
    sleep 0.2
  done
  log "healthy on 127.0.0.1:$PORT"
}

start() {
  if external; then log "using external Redis at $REDIS_URL"; return 0; fi
  ensure_installed
  if ping; then log "already running on 127.0.0.1:$PORT"; return 0; fi
  mkdir -p "$DIR"
  # appendonly + everysec: a Redis restart loses at most ~1 s of writes (see README).
  redis-server --bind 127.0.0.1 --port "$PORT" --daemonize yes --pidfile "$PIDFILE" \
    --dir "$DIR" --logfile "$DIR/redis.log" --appendonly yes --appendfsync everysec \
    --save "" --maxmemory-policy noeviction
  wait_healthy 30
}

stop() {
  if external; then return 0; fi
  if ping; then redis-cli -h 127.0.0.1 -p "$PORT" shutdown nosave >/dev/null 2>&1 || true; log "stopped"; fi
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  wait) external || wait_healthy "${2:-30}" ;;
  status) if external || ping; then echo running; else echo stopped; exit 1; fi ;;
  reset) stop; rm -rf "$DIR"; log "data removed" ;;
  *) echo "usage: $0 start|stop|status|wait|reset" >&2; exit 2 ;;
esac
