#!/usr/bin/env bash
# With one of three brokers killed, acks=all writes still succeed
# (min.insync.replicas=2); the broker started again rejoins with its data
# and every partition of mqtt.ingest is back to three in-sync replicas.
source "$(dirname "$0")/lib.sh"
require_kafka_stack
topic=mqtt.ingest
eventually "$topic is fully replicated before the test" topic_fully_replicated "$topic" 3

killed=$("$STACK" kill kafka-3) || fail "scripts/stack kill kafka-3 failed"
note "$killed"
two_brokers() { [[ $(kafka_broker_count) == 2 ]]; }
eventually "the cluster drops kafka-3 from its metadata" two_brokers

marker="stack-test-restart-$$-$RANDOM"
printf '%s\n' "$marker" | timeout 60 kcat -P -b "$KAFKA_BOOTSTRAP" -t "$topic" -p 0 \
  -X acks=all -X enable.idempotence=true -X message.timeout.ms=30000 -k "$marker" ||
  fail "an acks=all write with one broker down was not acknowledged"

"$STACK" start kafka-3 || fail "scripts/stack start kafka-3 failed"
three_brokers() { [[ $(kafka_broker_count) == 3 ]]; }
eventually "kafka-3 is back in the cluster metadata" three_brokers
eventually "every partition of $topic has 3 in-sync replicas again" topic_fully_replicated "$topic" 3

# Read the marker back from kafka-3 alone: it holds the data it missed.
found=$(timeout 60 kcat -C -b 127.0.0.1:9094 -t "$topic" -p 0 -o -200 -e -q -f '%k\n' 2>/dev/null | grep -cx "$marker" || true)
[[ $found -ge 1 ]] || fail "the record written while kafka-3 was down is not readable from kafka-3 after it rejoined"
note "PASS: write acknowledged with kafka-3 down; kafka-3 rejoined with the record, $topic back to 3 in-sync replicas"
