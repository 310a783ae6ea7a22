#!/usr/bin/env bash
# Start / stop / check a single-node Apache Kafka 4.x broker in KRaft mode (broker + controller
# in one JVM), run from its Maven Central jars on the machine's Java 17.
#
#   scripts/kafka.sh start|stop|status|wait
#
# Idempotent: `start` on a healthy broker does nothing; `stop` on a stopped one does nothing.
# Everything it writes (jars, logs, data) lives under $SV_STATE_DIR (default .state/).
# When KAFKA_BOOTSTRAP_SERVERS is set the caller brings its own Kafka and nothing is started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE="${SV_STATE_DIR:-$ROOT/.state}"
KAFKA_PORT="${SV_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${SV_KAFKA_CONTROLLER_PORT:-9093}"
HEAP="${SV_KAFKA_HEAP:-768m}"
DIR="$STATE/kafka"
JARS="$DIR/jars"
DATA="$DIR/data"
PIDFILE="$DIR/kafka.pid"
LOG="$DIR/kafka.log"
PROPS="$DIR/server.properties"

log() { echo "[kafka] $*" >&2; }

external() { [ -n "${KAFKA_BOOTSTRAP_SERVERS:-}" ]; }

is_running() { [ -f "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$KAFKA_PORT") 2>/dev/null; }

ensure_tools() {
  if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then
    log "installing Java 17 and Maven from Debian's packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq openjdk-17-jre-headless maven >/dev/null
  fi
}

ensure_jars() {
  if [ -f "$JARS/.complete" ] && [ "$JARS/.complete" -nt "$ROOT/services/kafka/pom.xml" ]; then return; fi
  log "resolving Kafka jars with Maven (cached in ~/.m2)"
  rm -rf "$JARS"; mkdir -p "$JARS"
  mvn -q -B -f "$ROOT/services/kafka/pom.xml" dependency:copy-dependencies \
      -DoutputDirectory="$JARS" -DincludeScope=runtime >"$DIR/mvn.log" 2>&1 \
    || { cat "$DIR/mvn.log" >&2; exit 1; }
  touch "$JARS/.complete"
}

write_props() {
  cat >"$PROPS" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=168
PROPS
}

java_cmd() {
  java "-Xmx$HEAP" "-Xms256m" -XX:+UseG1GC -Djava.awt.headless=true \
       -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
       -cp "$JARS/*" "$@"
}

wait_healthy() {
  # KRaft brokers bind their client listener only once they have registered with the
  # controller and caught up with the metadata log, so an open port means "ready".
  local deadline=$((SECONDS + ${1:-90}))
  until port_open; do
    if [ -f "$PIDFILE" ] && ! is_running; then log "broker exited; last log lines:"; tail -30 "$LOG" >&2 || true; return 1; fi
    [ $SECONDS -lt $deadline ] || { log "not healthy after ${1:-90}s"; tail -30 "$LOG" >&2 || true; return 1; }
    sleep 0.5
  done
  log "healthy on 127.0.0.1:$KAFKA_PORT"
}

start() {
  if external; then log "using external Kafka at $KAFKA_BOOTSTRAP_SERVERS"; return 0; fi
  if is_running && port_open; then log "already running (pid $(cat "$PIDFILE"))"; return 0; fi
  if port_open; then log "a broker already listens on 127.0.0.1:$KAFKA_PORT; using it"; return 0; fi
  ensure_tools
  mkdir -p "$DIR"
  ensure_jars
  write_props
  if [ ! -f "$DATA/meta.properties" ]; then
    log "formatting KRaft storage"
    java_cmd kafka.tools.StorageTool format -t "$(java_cmd kafka.tools.StorageTool random-uuid)" \
        -c "$PROPS" >"$DIR/format.log" 2>&1 || { cat "$DIR/format.log" >&2; exit 1; }
  fi
  log "starting broker on 127.0.0.1:$KAFKA_PORT (heap $HEAP)"
  nohup java "-Xmx$HEAP" -Xms256m -XX:+UseG1GC -Djava.awt.headless=true \
      -Dorg.slf4j.simpleLogger.defaultLogLevel=warn -Dorg.slf4j.simpleLogger.showDateTime=true \
      -cp "$JARS/*" kafka.Kafka "$PROPS" >"$LOG" 2>&1 &
  echo $! >"$PIDFILE"
  wait_healthy 120
}

stop() {
  if external; then return 0; fi
  if ! is_running; then log "not running"; rm -f "$PIDFILE"; return 0; fi
  local pid; pid="$(cat "$PIDFILE")"
  log "stopping (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$PIDFILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  wait) external || wait_healthy "${2:-90}" ;;
  status) if external || (is_running && port_open); then echo running; else echo stopped; exit 1; fi ;;
  reset) stop; rm -rf "$DATA"; log "data removed" ;;
  *) echo "usage: $0 start|stop|status|wait|reset" >&2; exit 2 ;;
esac
