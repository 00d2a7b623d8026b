#!/usr/bin/env bash
# `scripts/stack topic create` on the 3-broker stack makes a topic with three
# in-sync replicas per partition and min.insync.replicas=2.
source "$(dirname "$0")/lib.sh"
require_kafka_stack

topic="stack-test-create-$$-$RANDOM"
trap '"$STACK" topic delete "$topic" >/dev/null 2>&1 || true' EXIT
"$STACK" topic create "$topic" --partitions 2 || fail "scripts/stack topic create $topic failed"
out=$(kafka_metadata -t "$topic")
grep -q "topic \"$topic\" with 2 partitions" <<<"$out" || fail "kcat does not show $topic with 2 partitions: $out"
topic_fully_replicated "$topic" 3 || fail "$topic is not 3 in-sync replicas per partition: $out"
described=$("$STACK" topic describe "$topic") || fail "scripts/stack topic describe $topic failed"
grep -q 'ReplicationFactor: 3' <<<"$described" || fail "describe does not show replication factor 3: $described"
grep -q 'min.insync.replicas=2' <<<"$described" || fail "describe does not show min.insync.replicas=2: $described"
grep -q 'unclean.leader.election.enable=false' <<<"$described" || fail "describe does not show unclean leader election off: $described"
note "PASS: $topic has 2 partitions x 3 in-sync replicas, min.insync.replicas=2"
