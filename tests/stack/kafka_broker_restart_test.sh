#!/usr/bin/env bash
# With one of three brokers killed, acks=all writes still succeed
# (min.insync.replicas=2); the broker started again rejoins with its data,
# catches up on what it missed and every partition is back to three in-sync
# replicas.
source "$(dirname "$0")/lib.sh"
require_kafka_stack

topic="stack-test-restart-$$-$RANDOM"
trap '"$STACK" topic delete "$topic" >/dev/null 2>&1 || true' EXIT
"$STACK" topic create "$topic" --partitions 1 >/dev/null || fail "scripts/stack topic create $topic failed"
eventually "$topic is fully replicated before the test" topic_fully_replicated "$topic" 3
eventually "mqtt.ingest is fully replicated before the test" topic_fully_replicated mqtt.ingest 3

killed=$("$STACK" kill kafka-3) || fail "scripts/stack kill kafka-3 failed"
note "$killed"
two_brokers() { [[ $(kafka_broker_count) == 2 ]]; }
eventually "the cluster drops kafka-3 from its metadata" two_brokers

marker="written-while-kafka-3-down-$RANDOM"
printf '%s\n' "$marker" | timeout 60 kcat -P -b "$KAFKA_BOOTSTRAP" -t "$topic" -p 0 \
  -X acks=all -X enable.idempotence=true -X message.timeout.ms=30000 ||
  fail "an acks=all write with one broker down was not acknowledged"

"$STACK" start kafka-3 || fail "scripts/stack start kafka-3 failed"
three_brokers() { [[ $(kafka_broker_count) == 3 ]]; }
eventually "kafka-3 is back in the cluster metadata" three_brokers
eventually "every partition of $topic has 3 in-sync replicas again" topic_fully_replicated "$topic" 3
eventually "every partition of mqtt.ingest has 3 in-sync replicas again" topic_fully_replicated mqtt.ingest 3

# kafka-3 is back in the ISR, so it has copied the record it missed.
got=$(timeout 60 kcat -C -b "$KAFKA_BOOTSTRAP" -t "$topic" -p 0 -o beginning -e -q 2>/dev/null || true)
[[ $got == "$marker" ]] || fail "reading $topic back gave '$got', expected the record written while kafka-3 was down"
note "PASS: write acknowledged with kafka-3 down; kafka-3 rejoined and every partition has 3 in-sync replicas"
