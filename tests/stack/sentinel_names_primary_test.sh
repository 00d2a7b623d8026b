#!/usr/bin/env bash
# Every Sentinel names the same primary for master 'wharf', that node is a
# primary, and each Sentinel sees both replicas, its two peers and a quorum.
source "$(dirname "$0")/lib.sh"
require_redis_stack

primary=$(primary_port)
for s in "${SENTINEL_PORTS[@]}"; do
  addr=$(rcli "$s" SENTINEL get-master-addr-by-name "$MASTER_NAME" | paste -sd:)
  [[ $addr == "$HOST:$primary" ]] || fail "Sentinel $s names '$addr', Sentinel ${SENTINEL_PORTS[0]} names $HOST:$primary"
  replicas=$(rcli "$s" SENTINEL replicas "$MASTER_NAME" | awk 'prev == "name" { print } { prev = $0 }' | sort | paste -sd' ')
  expected=$(for r in $(replica_ports_of "$primary"); do printf '%s:%s\n' "$HOST" "$r"; done | sort | paste -sd' ')
  [[ $replicas == "$expected" ]] || fail "Sentinel $s knows replicas '$replicas', expected '$expected'"
  others=$(rcli "$s" SENTINEL master "$MASTER_NAME" | awk 'prev == "num-other-sentinels" { print } { prev = $0 }')
  [[ $others == 2 ]] || fail "Sentinel $s knows $others other Sentinels, expected 2"
  quorum=$(rcli "$s" SENTINEL ckquorum "$MASTER_NAME")
  [[ $quorum == OK* ]] || fail "Sentinel $s: quorum check says '$quorum'"
done
[[ $(info_field "$primary" role) == master ]] || fail "the named primary $primary reports role $(info_field "$primary" role)"
note "PASS: all 3 Sentinels name $HOST:$primary and see 2 replicas and 2 peers"
