#!/usr/bin/env bash
# A write on the Redis primary reaches both replicas: WAIT 2 counts two
# acknowledging replicas and each replica serves the value.
source "$(dirname "$0")/lib.sh"
require_redis_stack

primary=$(primary_port)
[[ $(info_field "$primary" role) == master ]] || fail "Sentinel names $primary as primary but it reports role $(info_field "$primary" role)"

key="stack-test:replication:$$:$RANDOM"
value="v-$(date +%s%N)"
[[ $(rcli "$primary" SET "$key" "$value" EX 300) == OK ]] || fail "SET on primary $primary failed"
acked=$(rcli "$primary" WAIT 2 5000)
[[ $acked == 2 ]] || fail "WAIT 2 on primary $primary returned '$acked', expected 2 replicas"

for r in $(replica_ports_of "$primary"); do
  [[ $(info_field "$r" role) == slave ]] || fail "redis on $r is not a replica"
  got=$(rcli "$r" GET "$key")
  [[ $got == "$value" ]] || fail "replica $r returned '$got' for $key, expected '$value'"
  # Replicas refuse writes, so nothing can diverge from the primary.
  out=$(rcli "$r" SET "$key" other)
  [[ $out == READONLY* ]] || fail "replica $r accepted a write: '$out'"
done
rcli "$primary" DEL "$key" >/dev/null
note "PASS: write on primary $primary acknowledged by 2 replicas and readable on both"
