#!/usr/bin/env bash
# Start / stop / check both local services (Kafka in KRaft mode, Redis) in one command.
#   scripts/services.sh start|stop|status|reset
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
case "${1:-}" in
  start) "$HERE/redis.sh" start; "$HERE/kafka.sh" start ;;
  stop) "$HERE/kafka.sh" stop; "$HERE/redis.sh" stop ;;
  status) "$HERE/redis.sh" status && "$HERE/kafka.sh" status ;;
  reset) "$HERE/kafka.sh" reset; "$HERE/redis.sh" reset ;;
  *) echo "usage: $0 start|stop|status|reset" >&2; exit 2 ;;
esac
