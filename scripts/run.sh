#!/usr/bin/env bash
# The main job: Kafka, Redis, the worker and simulated live traffic, in one command.
#   scripts/run.sh [--rate N] [--duration S]      (defaults: 200 events/s, until Ctrl-C)
# The worker serves http://127.0.0.1:6066 (SV_WEB_PORT); its log is .state/worker.log.
# Ctrl-C stops the worker and the simulator; `scripts/services.sh stop` stops Kafka and Redis.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
scripts/bootstrap.sh
scripts/services.sh start
mkdir -p .state
.venv/bin/stream-app worker >>.state/worker.log 2>&1 &
WORKER=$!
trap 'kill $WORKER 2>/dev/null; wait $WORKER 2>/dev/null || true' EXIT INT TERM
PORT="${SV_WEB_PORT:-6066}"
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$PORT/api/health" >/dev/null 2>&1 && break
  kill -0 $WORKER 2>/dev/null || { echo "worker exited; see .state/worker.log" >&2; tail -30 .state/worker.log >&2; exit 1; }
  sleep 0.5
done
echo "[run] worker ready: http://127.0.0.1:$PORT/  (log: .state/worker.log)" >&2
.venv/bin/stream-app simulate --rate 200 --duration 0 "$@"
