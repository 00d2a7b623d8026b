#include "state/redis/redis_scripts.h"

#include <openssl/sha.h>

#include <cstdio>

namespace wharf::state::scripts {
namespace {

// Shared by every script: time, key names, and moving a connected session
// to "disconnected" with its will scheduled.
constexpr const char* prelude = R"lua(
local NEVER = 4294967295
local GRACE = 3600000
local WILL_FIELDS = {'w', 'wt', 'wp', 'wq', 'wr', 'wx', 'wd'}
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function skey(cid) return P .. 's:{' .. cid .. '}' end
local function subs_key(cid) return skey(cid) .. ':subs' end
local function q2_key(cid) return skey(cid) .. ':q2' end
local function node_sessions(n) return P .. 'node:' .. n .. ':sessions' end
local function node_alive(n) return P .. 'node:' .. n .. ':alive' end
local function fenced(cid, epoch)
  local cur = redis.call('HGET', skey(cid), 'epoch')
  return (not cur) or tonumber(cur) ~= tonumber(epoch)
end
local function claim_will(cid)
  local sk = skey(cid)
  local w = redis.call('HMGET', sk, 'wt', 'wp', 'wq', 'wr', 'wx', 'wd')
  redis.call('HDEL', sk, unpack(WILL_FIELDS))
  redis.call('ZREM', P .. 'wills', cid)
  return w
end
local function set_ttl(cid, ms)
  for _, k in ipairs({skey(cid), subs_key(cid), q2_key(cid)}) do
    if ms then redis.call('PEXPIRE', k, ms) else redis.call('PERSIST', k) end
  end
end
local function delete_session(cid)
  redis.call('DEL', skey(cid), subs_key(cid), q2_key(cid))
  redis.call('ZREM', P .. 'wills', cid)
  redis.call('ZREM', P .. 'expiry', cid)
end
-- Returns the will if it is due now and due_now_out is set; otherwise the
-- will (if any) is scheduled in wharf:wills.
local function mark_disconnected(cid, now, publish, due_now_out)
  local sk = skey(cid)
  local f = redis.call('HMGET', sk, 'expiry', 'w', 'wd')
  local expiry = tonumber(f[1])
  redis.call('HSET', sk, 'state', 'd', 'disc', now, 'seen', now)
  local out = {}
  if f[2] and publish then
    local delay = math.min(tonumber(f[3]), expiry)
    if delay == 0 and due_now_out then
      out = claim_will(cid)
    else
      redis.call('ZADD', P .. 'wills', now + delay * 1000, cid)
    end
  else
    redis.call('HDEL', sk, unpack(WILL_FIELDS))
  end
  if expiry == NEVER then
    redis.call('ZREM', P .. 'expiry', cid)
    set_ttl(cid, nil)
  else
    redis.call('ZADD', P .. 'expiry', now + expiry * 1000, cid)
    set_ttl(cid, expiry * 1000 + GRACE)
  end
  return out
end
-- Disconnects up to `limit` sessions a node left behind.
-- Returns true when none remain, and how many were taken.
local function reap(n, now, limit)
  local ids = redis.call('SPOP', node_sessions(n), limit)
  for _, cid in ipairs(ids) do
    local f = redis.call('HMGET', skey(cid), 'node', 'state')
    if f[1] == n and f[2] == 'c' then mark_disconnected(cid, now, true, false) end
  end
  return redis.call('SCARD', node_sessions(n)) == 0, #ids
end
)lua";

// ARGV: cid node conn clean(0|1) expiry has_will(0|1) wt wp wq wr wx wd
// -> {present, epoch, prev_node, prev_conn, taken_over, {q2 ids}, {filter, options, id, ...},
//     {will fields} or {}, expired}
constexpr const char* connect_body = R"lua(
local cid, node, conn = ARGV[1], ARGV[2], ARGV[3]
local clean = ARGV[4] == '1'
local now = now_ms()
local sk = skey(cid)
local present, prev_node, prev_conn, taken, expired = 0, '', '', 0, 0
local will_out = {}
local s = redis.call('HMGET', sk, 'epoch', 'node', 'conn', 'state', 'expiry', 'disc', 'w', 'wd')
local exists = s[1] ~= false
if exists and s[4] == 'd' then
  local e = tonumber(s[5])
  if e ~= NEVER and tonumber(s[6]) + e * 1000 <= now then
    if s[7] then will_out = claim_will(cid) end
    delete_session(cid)
    exists = false
    expired = 1
  end
end
if exists then
  prev_node, prev_conn = s[2], s[3]
  if s[4] == 'c' then
    if prev_node == node or redis.call('EXISTS', node_alive(prev_node)) == 1 then taken = 1 end
    redis.call('SREM', node_sessions(prev_node), cid)
    if s[7] and (tonumber(s[8]) == 0 or clean) then will_out = claim_will(cid) end
  elseif s[7] then
    local due = redis.call('ZSCORE', P .. 'wills', cid)
    if clean or (due and tonumber(due) <= now) then will_out = claim_will(cid) end
  end
  if clean then
    redis.call('DEL', subs_key(cid), q2_key(cid))
  else
    present = 1
  end
end
local epoch = redis.call('INCR', P .. 'epoch')
redis.call('DEL', sk)
redis.call('HSET', sk, 'epoch', epoch, 'node', node, 'conn', conn, 'clean', ARGV[4],
           'expiry', ARGV[5], 'state', 'c', 'seen', now)
if ARGV[6] == '1' then
  redis.call('HSET', sk, 'w', '1', 'wt', ARGV[7], 'wp', ARGV[8], 'wq', ARGV[9], 'wr', ARGV[10],
             'wx', ARGV[11], 'wd', ARGV[12])
end
if exists then
  set_ttl(cid, nil)
  redis.call('ZREM', P .. 'wills', cid)
  redis.call('ZREM', P .. 'expiry', cid)
end
redis.call('SADD', node_sessions(node), cid)
redis.call('SADD', P .. 'nodes', node)
if taken == 1 then redis.call('PUBLISH', P .. 'node:' .. prev_node, epoch .. ' ' .. cid) end
local q2, subs = {}, {}
if present == 1 then
  q2 = redis.call('SMEMBERS', q2_key(cid))
  local h = redis.call('HGETALL', subs_key(cid))
  for i = 1, #h, 2 do
    local sep = string.find(h[i + 1], ':', 1, true)
    table.insert(subs, h[i])
    table.insert(subs, string.sub(h[i + 1], 1, sep - 1))
    table.insert(subs, string.sub(h[i + 1], sep + 1))
  end
end
return {present, epoch, prev_node, prev_conn, taken, q2, subs, will_out, expired}
)lua";

// ARGV: cid epoch expiry publish(0|1) -> {ended, {will fields} or {}}
constexpr const char* disconnect_body = R"lua(
local cid = ARGV[1]
if fenced(cid, ARGV[2]) then return redis.error_reply('FENCED stale session epoch') end
local sk = skey(cid)
local f = redis.call('HMGET', sk, 'node', 'w')
redis.call('SREM', node_sessions(f[1]), cid)
local publish = ARGV[4] == '1'
if tonumber(ARGV[3]) == 0 then
  local out = {}
  if publish and f[2] then out = claim_will(cid) end
  delete_session(cid)
  return {1, out}
end
redis.call('HSET', sk, 'expiry', ARGV[3])
return {0, mark_disconnected(cid, now_ms(), publish, true)}
)lua";

// ARGV: cid epoch packet_id -> 1
constexpr const char* qos2_hold_body = R"lua(
if fenced(ARGV[1], ARGV[2]) then return redis.error_reply('FENCED stale session epoch') end
redis.call('SADD', q2_key(ARGV[1]), ARGV[3])
return 1
)lua";

// ARGV: cid epoch packet_id -> 1 if it was held, 0 if not
constexpr const char* qos2_release_body = R"lua(
if fenced(ARGV[1], ARGV[2]) then return redis.error_reply('FENCED stale session epoch') end
return redis.call('SREM', q2_key(ARGV[1]), ARGV[3])
)lua";

// ARGV: cid epoch expiry -> 1
constexpr const char* update_expiry_body = R"lua(
if fenced(ARGV[1], ARGV[2]) then return redis.error_reply('FENCED stale session epoch') end
redis.call('HSET', skey(ARGV[1]), 'expiry', ARGV[3])
return 1
)lua";

// ARGV: cid epoch n_remove filter... then (filter options id)... -> 1
constexpr const char* subscriptions_body = R"lua(
if fenced(ARGV[1], ARGV[2]) then return redis.error_reply('FENCED stale session epoch') end
local k = subs_key(ARGV[1])
local n = tonumber(ARGV[3])
for i = 4, 3 + n do redis.call('HDEL', k, ARGV[i]) end
for i = 4 + n, #ARGV, 3 do redis.call('HSET', k, ARGV[i], ARGV[i + 1] .. ':' .. ARGV[i + 2]) end
return 1
)lua";

// ARGV: caller_node limit
// -> {{{cid, wt, wp, wq, wr, wx, wd}...}, expired, reaped_nodes, more (1: call again)}
constexpr const char* sweep_body = R"lua(
local me, limit = ARGV[1], tonumber(ARGV[2])
local now = now_ms()
local reaped, more = 0, 0
local budget = limit
for _, n in ipairs(redis.call('SMEMBERS', P .. 'nodes')) do
  if n ~= me and redis.call('EXISTS', node_alive(n)) == 0 then
    if budget <= 0 then
      more = 1
      break
    end
    local done, taken = reap(n, now, budget)
    budget = budget - taken
    if done then
      redis.call('SREM', P .. 'nodes', n)
      reaped = reaped + 1
    else
      more = 1
    end
  end
end
local wills = {}
local due = redis.call('ZRANGEBYSCORE', P .. 'wills', '-inf', now, 'LIMIT', 0, limit)
if #due == limit then more = 1 end
for _, cid in ipairs(due) do
  local f = redis.call('HMGET', skey(cid), 'state', 'w')
  if f[1] == 'd' and f[2] then
    local w = claim_will(cid)
    table.insert(w, 1, cid)
    table.insert(wills, w)
  else
    redis.call('ZREM', P .. 'wills', cid)
  end
end
local expired = 0
local ending = redis.call('ZRANGEBYSCORE', P .. 'expiry', '-inf', now, 'LIMIT', 0, limit)
if #ending == limit then more = 1 end
for _, cid in ipairs(ending) do
  local f = redis.call('HMGET', skey(cid), 'state', 'disc', 'expiry', 'w')
  if f[1] == 'd' and tonumber(f[3]) ~= NEVER and tonumber(f[2]) + tonumber(f[3]) * 1000 <= now then
    if f[4] then
      local w = claim_will(cid)
      table.insert(w, 1, cid)
      table.insert(wills, w)
    end
    delete_session(cid)
    expired = expired + 1
  else
    redis.call('ZREM', P .. 'expiry', cid)
  end
end
return {wills, expired, reaped, more}
)lua";

// A node stopping: its sessions become disconnected, in batches of
// `limit` so that no single call blocks Redis for long. The last batch
// removes the heartbeat. ARGV: node limit -> sessions still to do
constexpr const char* shutdown_body = R"lua(
local me = ARGV[1]
if not reap(me, now_ms(), tonumber(ARGV[2])) then
  return redis.call('SCARD', node_sessions(me))
end
redis.call('DEL', node_alive(me))
redis.call('SREM', P .. 'nodes', me)
return 0
)lua";

// A node starting: sessions an earlier run of the same node id left
// "connected" have no connection any more. Batches of `limit`.
// ARGV: node ttl_ms limit -> sessions still to do
constexpr const char* start_body = R"lua(
local me = ARGV[1]
redis.call('SET', node_alive(me), '1', 'PX', ARGV[2])
redis.call('SADD', P .. 'nodes', me)
if reap(me, now_ms(), tonumber(ARGV[3])) then return 0 end
return redis.call('SCARD', node_sessions(me))
)lua";

script make(const std::string& prefix, const char* body) {
  script s{"local P = '" + prefix + "'\n" + prelude + body, {}};
  unsigned char digest[SHA_DIGEST_LENGTH];
  SHA1(reinterpret_cast<const unsigned char*>(s.source.data()), s.source.size(), digest);
  char hex[2 * SHA_DIGEST_LENGTH + 1];
  for (int i = 0; i < SHA_DIGEST_LENGTH; ++i) std::snprintf(hex + 2 * i, 3, "%02x", digest[i]);
  s.sha1.assign(hex, 2 * SHA_DIGEST_LENGTH);
  return s;
}

}  // namespace

script_set make_scripts(const std::string& prefix) {
  return {make(prefix, connect_body),      make(prefix, disconnect_body),    make(prefix, qos2_hold_body),
          make(prefix, qos2_release_body), make(prefix, update_expiry_body), make(prefix, subscriptions_body),
          make(prefix, sweep_body),        make(prefix, shutdown_body),      make(prefix, start_body)};
}

}  // namespace wharf::state::scripts
