# Shared helpers for the stack's shell tests. Source it; every failure exits
# non-zero with a message that says what was expected.
set -euo pipefail

STACK_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STACK=$STACK_ROOT/scripts/stack
HOST=127.0.0.1
REDIS_PORTS=(6379 6380 6381)
SENTINEL_PORTS=(26379 26380 26381)
MASTER_NAME=wharf
WAIT_LIMIT=${WHARF_TEST_WAIT_LIMIT:-60}

fail() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }
note() { printf '%s\n' "$*"; }

rcli() { timeout 5 redis-cli -h "$HOST" -p "$1" "${@:2}" 2>/dev/null | tr -d '\r'; }
info_field() { rcli "$1" INFO replication | sed -n "s/^$2://p"; }

# Port of the primary as one Sentinel names it.
sentinel_primary_port() {
  rcli "$1" SENTINEL get-master-addr-by-name "$MASTER_NAME" | sed -n 2p
}

# eventually DESCRIPTION COMMAND...: retries until the command succeeds; a
# bound on waiting for an outcome, not a speed check.
eventually() {
  local what=$1 deadline=$((SECONDS + WAIT_LIMIT))
  shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "$what (still not true after ${WAIT_LIMIT}s)"
    sleep 0.5
  done
}

# The stack must already be up; a missing service fails the test.
require_redis_stack() {
  command -v redis-cli >/dev/null || fail "redis-cli not found (run scripts/bootstrap)"
  local p
  for p in "${REDIS_PORTS[@]}" "${SENTINEL_PORTS[@]}"; do
    [[ $(rcli "$p" PING) == PONG ]] ||
      fail "nothing answers PING on $HOST:$p; start the stack with: scripts/stack up --brokers 3"
  done
}

primary_port() {
  local p
  p=$(sentinel_primary_port "${SENTINEL_PORTS[0]}")
  [[ $p =~ ^[0-9]+$ ]] || fail "Sentinel on ${SENTINEL_PORTS[0]} names no primary for '$MASTER_NAME'"
  printf '%s' "$p"
}

replica_ports_of() {
  local p
  for p in "${REDIS_PORTS[@]}"; do [[ $p == "$1" ]] || printf '%s\n' "$p"; done
}

# True once the whole Redis side is healthy: primary with two online
# replicas, every Sentinel naming it and seeing two healthy replicas.
redis_stack_whole() {
  local primary s r flags
  primary=$(sentinel_primary_port "${SENTINEL_PORTS[0]}")
  [[ $primary =~ ^[0-9]+$ ]] || return 1
  [[ $(info_field "$primary" role) == master ]] || return 1
  [[ $(info_field "$primary" connected_slaves) == 2 ]] || return 1
  for r in $(replica_ports_of "$primary"); do
    [[ $(info_field "$r" master_port) == "$primary" && $(info_field "$r" master_link_status) == up ]] || return 1
  done
  for s in "${SENTINEL_PORTS[@]}"; do
    [[ $(sentinel_primary_port "$s") == "$primary" ]] || return 1
    flags=$(rcli "$s" SENTINEL replicas "$MASTER_NAME" | awk 'prev == "flags" { print } { prev = $0 }')
    [[ $(grep -c '^slave$' <<<"$flags") == 2 && $(grep -c . <<<"$flags") == 2 ]] || return 1
  done
}

KAFKA_BOOTSTRAP=${WHARF_TEST_KAFKA_BROKERS:-127.0.0.1:9092,127.0.0.1:9093,127.0.0.1:9094}

kafka_metadata() { timeout 10 kcat -L -b "$KAFKA_BOOTSTRAP" -m 5 "$@" 2>/dev/null; }
kafka_broker_count() { kafka_metadata -t __stack_test_none__ | sed -n 's/^ \([0-9]*\) brokers:$/\1/p'; }

require_kafka_stack() {
  command -v kcat >/dev/null || fail "kcat not found (run scripts/bootstrap)"
  local n
  n=$(kafka_broker_count)
  [[ $n == 3 ]] ||
    fail "Kafka at $KAFKA_BOOTSTRAP reports '${n:-no}' brokers, expected 3; start the stack with: scripts/stack up --brokers 3"
}

# True when every partition of the topic has RF replicas, all in sync.
topic_fully_replicated() {
  local topic=$1 rf=$2
  kafka_metadata -t "$topic" | awk -v rf="$rf" '
    /partition [0-9]+, leader/ {
      n++
      if ($4 == "-1,") bad = 1
      r = $0; sub(/.*replicas: /, "", r); sub(/, isrs:.*/, "", r)
      s = $0; sub(/.*isrs: /, "", s); sub(/[ ,]*$/, "", s)
      if (split(r, a, ",") != rf || split(s, b, ",") != rf) bad = 1
    }
    END { exit (n > 0 && !bad) ? 0 : 1 }'
}
