#!/usr/bin/env bash
# `scripts/stack status` lists all nine services as up with their pids and
# names the same Redis primary the Sentinels name.
source "$(dirname "$0")/lib.sh"
require_redis_stack
require_kafka_stack

out=$("$STACK" status) || fail "status exited non-zero although the stack is up: $out"
for s in kafka-1 kafka-2 kafka-3 redis-1 redis-2 redis-3 sentinel-1 sentinel-2 sentinel-3; do
  grep -qE "^$s +[0-9]+ +[0-9]+ +up " <<<"$out" || fail "status does not show $s up with a pid: $out"
done
primary=$(primary_port)
grep -q "^Redis primary: *$HOST:$primary (redis-" <<<"$out" || fail "status does not name $HOST:$primary as Redis primary: $out"
note "PASS: status shows 9 services up and primary $HOST:$primary"
