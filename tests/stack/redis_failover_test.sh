#!/usr/bin/env bash
# Killing the Redis primary makes Sentinel promote a replica that the other
# replica follows; the killed node, started again, rejoins as a replica, so
# the stack is whole again afterwards.
source "$(dirname "$0")/lib.sh"
require_redis_stack
eventually "the Redis side of the stack is whole before the test" redis_stack_whole

old=$(primary_port)
key="stack-test:failover:$$:$RANDOM"
[[ $(rcli "$old" SET "$key" before EX 300) == OK ]] || fail "SET on primary $old failed"
[[ $(rcli "$old" WAIT 2 5000) == 2 ]] || fail "WAIT 2 on $old did not reach both replicas"

killed=$("$STACK" kill redis-primary) || fail "scripts/stack kill redis-primary failed"
note "$killed"
killed_name=$(awk '{ print $1 }' <<<"$killed")
[[ $killed_name == redis-[123] ]] || fail "kill redis-primary did not name the node it killed: '$killed'"
[[ $(rcli "$old" PING) != PONG ]] || fail "the old primary $old still answers after kill"

promoted() {
  local s p
  p=$(sentinel_primary_port "${SENTINEL_PORTS[0]}")
  [[ $p =~ ^[0-9]+$ && $p != "$old" ]] || return 1
  for s in "${SENTINEL_PORTS[@]}"; do [[ $(sentinel_primary_port "$s") == "$p" ]] || return 1; done
  [[ $(info_field "$p" role) == master ]]
}
eventually "all Sentinels name a new primary after $old was killed" promoted
new=$(primary_port)
note "Sentinel promoted $new"

other=$(replica_ports_of "$old" | grep -vx "$new")
follows_new() { [[ $(info_field "$other" master_port) == "$new" && $(info_field "$other" master_link_status) == up ]]; }
eventually "the remaining replica $other follows the new primary $new" follows_new
[[ $(rcli "$new" GET "$key") == before ]] || fail "the promoted primary $new lost $key"
[[ $(rcli "$new" SET "$key" after EX 300) == OK ]] || fail "the new primary $new refuses writes"
acked=$(rcli "$new" WAIT 1 5000)
[[ $acked -ge 1 ]] || fail "WAIT 1 on the new primary returned '$acked'"
[[ $(rcli "$other" GET "$key") == after ]] || fail "replica $other did not receive the write on $new"

"$STACK" start "$killed_name" || fail "scripts/stack start $killed_name failed"
rejoined() { [[ $(info_field "$old" role) == slave && $(info_field "$old" master_port) == "$new" && $(info_field "$old" master_link_status) == up ]]; }
eventually "$killed_name ($old) rejoins as a replica of $new" rejoined
eventually "the Redis side of the stack is whole again (2 replicas, every Sentinel agrees)" redis_stack_whole
[[ $(rcli "$old" GET "$key") == after ]] || fail "$killed_name did not resync from $new"
rcli "$new" DEL "$key" >/dev/null
note "PASS: $old killed, $new promoted, $other followed, $old rejoined as replica"
