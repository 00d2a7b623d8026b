#!/usr/bin/env bash
# `scripts/stack up` on a running stack changes nothing: it reports the
# stack as already up and every service keeps its pid.
source "$(dirname "$0")/lib.sh"
require_redis_stack
require_kafka_stack

pids_now() { cat "${WHARF_STACK_DIR:-$STACK_ROOT/.stack}"/pids/*.pid 2>/dev/null | sort | paste -sd' '; }
before=$(pids_now)
[[ -n $before ]] || fail "no pid files under .stack/pids; was the stack started by scripts/stack?"
out=$("$STACK" up 2>&1) || fail "up on a running stack failed: $out"
grep -q 'stack is already up' <<<"$out" || fail "up on a running stack did not say so: $out"
after=$(pids_now)
[[ $before == "$after" ]] || fail "up on a running stack changed processes: '$before' -> '$after'"
out=$("$STACK" up --brokers 1 2>&1) && fail "up --brokers 1 on a 3-broker stack succeeded: $out"
grep -q 'already up with 3 broker' <<<"$out" || fail "up --brokers 1 on a 3-broker stack gave no clear error: $out"
note "PASS: up on a running stack is a no-op and refuses another broker count"
