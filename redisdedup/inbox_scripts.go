package redisdedup

import "github.com/redis/go-redis/v9"

// The inbox's Lua scripts. Each gets the base of the inbox's keys as
// ARGV[1] (keyBase) and KEYS[1] = the ready set, which routes the call on a Cluster;
// every key it touches starts with the same base, so with the same hash
// tag, and lives in the same slot. Time is Redis's (TIME), so replicas'
// clocks do not matter.
//
// Keys, with B the base:
//
//	B.."ready"   zset  queue -> ms when its head may run (no entry: running or empty)
//	B.."lease"   zset  queue -> ms when the running head's lease ends
//	B.."pending" zset  pid -> received ms, every kept delivery not done nor dead
//	B.."dead"    zset  pid -> ms when it became a dead letter
//	B.."q:"..q   list  the pids of queue q in the order added; the head runs
//	B.."d:"..pid hash  p, id, q, body, recv, att, st (kept, dead, done), tok, rp
//
// A pid is "<provider>:<id>"; a queue is "k:<Key>", or "u:<pid>" for a
// delivery without a Key (a queue of its own). A completed delivery's hash
// becomes {st=done} expiring after the retention: the mark that makes a
// redelivery a duplicate.

// luaCommon defines now (ms, Redis's clock), the key names and the helpers
// the scripts share.
const luaCommon = `
local B = ARGV[1]
local R, L, P, X = B..'ready', B..'lease', B..'pending', B..'dead'
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function stats()
  local o = redis.call('ZRANGE', P, 0, 0, 'WITHSCORES')
  local oldest = 0
  if o[2] then oldest = tonumber(o[2]) end
  return redis.call('ZCARD', P), oldest
end
-- deadletter makes pid, the head (or running one) of queue q, a dead
-- letter and lets the next of q run.
local function deadletter(q, pid)
  local d = B..'d:'..pid
  local qk = B..'q:'..q
  redis.call('LREM', qk, 1, pid)
  redis.call('HSET', d, 'st', 'dead')
  redis.call('HDEL', d, 'tok', 'rp')
  redis.call('ZADD', X, now, pid)
  redis.call('ZREM', P, pid)
  redis.call('ZREM', L, q)
  if redis.call('LLEN', qk) > 0 then redis.call('ZADD', R, now, q) end
end
`

// inboxAddScript keeps a delivery. ARGV: B, pid, provider, id, queue, body,
// received ms. Returns {added (0/1), depth, oldest ms}.
var inboxAddScript = redis.NewScript(luaCommon + `
local pid, q = ARGV[2], ARGV[5]
local d = B..'d:'..pid
if redis.call('EXISTS', d) == 1 then return {0, 0, 0} end
redis.call('HSET', d, 'p', ARGV[3], 'id', ARGV[4], 'q', q, 'body', ARGV[6], 'recv', ARGV[7], 'att', 0, 'st', 'kept')
redis.call('ZADD', P, ARGV[7], pid)
if redis.call('RPUSH', B..'q:'..q, pid) == 1 then redis.call('ZADD', R, now, q) end
local n, oldest = stats()
return {1, n, oldest}
`)

// inboxTakeScript first gives back the runs whose lease ended (a dead replica's:
// the run counted as an attempt, so one on its last attempt becomes a dead
// letter), then leases up to ARGV[2] queues whose head is ready, for
// ARGV[3] ms each, with the tokens ARGV[4]..':'..i. ARGV[5] is the number
// of attempts. Returns {taken, dead, wait ms until the next is ready (-1:
// none), depth, oldest}; each taken is {pid, token, attempt, provider, id,
// body, received ms}, each dead {pid, provider, attempt, received}.
var inboxTakeScript = redis.NewScript(luaCommon + `
local max = tonumber(ARGV[5])
local dead = {}
for _, q in ipairs(redis.call('ZRANGEBYSCORE', L, '-inf', now, 'LIMIT', 0, 100)) do
  redis.call('ZREM', L, q)
  local pid = redis.call('LINDEX', B..'q:'..q, 0)
  if pid then
    local d = B..'d:'..pid
    redis.call('HDEL', d, 'tok')
    local f = redis.call('HMGET', d, 'att', 'rp', 'p', 'recv')
    if tonumber(f[1] or '0') >= max or f[2] == '1' then
      deadletter(q, pid)
      table.insert(dead, {pid, f[3] or '', tonumber(f[1] or '0'), f[4] or '0'})
    else
      redis.call('ZADD', R, now, q)
    end
  end
end
local taken = {}
local lease = tonumber(ARGV[3])
for i, q in ipairs(redis.call('ZRANGEBYSCORE', R, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))) do
  redis.call('ZREM', R, q)
  local pid = redis.call('LINDEX', B..'q:'..q, 0)
  if pid then
    local d = B..'d:'..pid
    local att = redis.call('HINCRBY', d, 'att', 1)
    local tok = ARGV[4]..':'..i
    redis.call('HSET', d, 'tok', tok)
    redis.call('ZADD', L, now + lease, q)
    local f = redis.call('HMGET', d, 'p', 'id', 'body', 'recv', 'q')
    table.insert(taken, {pid, tok, att, f[1], f[2], f[3], f[4], f[5]})
  end
end
local wait = -1
local nx = redis.call('ZRANGE', R, 0, 0, 'WITHSCORES')
if nx[2] then wait = math.max(0, tonumber(nx[2]) - now) end
local n, oldest = stats()
return {taken, dead, wait, n, oldest}
`)

// inboxCompleteScript completes pid when it holds the token ARGV[3]: its
// hash becomes the done mark for ARGV[4] ms and the next of its queue may
// run; with a token ARGV[5] (not empty), that next one is leased at once for
// ARGV[6] ms to the caller, which runs it (saving a take). Returns {1,
// depth, oldest, next}, next {} or {pid, token, attempt, provider, id,
// body, received ms, queue}; or {-1, 0, 0, {}} when the token is not held
// (the lease ended and another run may have it).
var inboxCompleteScript = redis.NewScript(luaCommon + `
local pid = ARGV[2]
local d = B..'d:'..pid
local f = redis.call('HMGET', d, 'tok', 'q')
if f[1] ~= ARGV[3] then return {-1, 0, 0, {}} end
local q = f[2]
local qk = B..'q:'..q
redis.call('LREM', qk, 1, pid)
redis.call('ZREM', L, q)
redis.call('ZREM', P, pid)
redis.call('DEL', d)
redis.call('HSET', d, 'st', 'done')
redis.call('PEXPIRE', d, ARGV[4])
local nx = {}
if redis.call('LLEN', qk) > 0 then
  if ARGV[5] ~= '' then
    local p2 = redis.call('LINDEX', qk, 0)
    local d2 = B..'d:'..p2
    local att = redis.call('HINCRBY', d2, 'att', 1)
    redis.call('HSET', d2, 'tok', ARGV[5])
    redis.call('ZADD', L, now + tonumber(ARGV[6]), q)
    local g = redis.call('HMGET', d2, 'p', 'id', 'body', 'recv', 'q')
    nx = {p2, ARGV[5], att, g[1], g[2], g[3], g[4], g[5]}
  else
    redis.call('ZADD', R, now, q)
  end
end
local n, oldest = stats()
return {1, n, oldest, nx}
`)

// inboxFailScript ends a failed or interrupted run of pid when it holds the
// token ARGV[3]: the head of its queue runs again after ARGV[4] ms, unless
// ARGV[6] is 1 (ErrPermanent), it was the last of ARGV[5] attempts, or a
// Replay: then it becomes a dead letter and the next of its queue may run.
// Returns {1 retried | 2 dead | -1 token not held, depth, oldest}.
var inboxFailScript = redis.NewScript(luaCommon + `
local pid = ARGV[2]
local d = B..'d:'..pid
local f = redis.call('HMGET', d, 'tok', 'q', 'att', 'rp')
if f[1] ~= ARGV[3] then return {-1, 0, 0} end
local q = f[2]
redis.call('HDEL', d, 'tok')
redis.call('ZREM', L, q)
local r = 1
if ARGV[6] == '1' or tonumber(f[3]) >= tonumber(ARGV[5]) or f[4] == '1' then
  deadletter(q, pid)
  r = 2
else
  redis.call('ZADD', R, now + tonumber(ARGV[4]), q)
end
local n, oldest = stats()
return {r, n, oldest}
`)

// inboxRenewScript extends the lease of the run of pid holding the token
// ARGV[3] to ARGV[4] ms from now: 1, or 0 when the token is not held.
var inboxRenewScript = redis.NewScript(luaCommon + `
local f = redis.call('HMGET', B..'d:'..ARGV[2], 'tok', 'q')
if f[1] ~= ARGV[3] then return 0 end
redis.call('ZADD', L, 'XX', now + tonumber(ARGV[4]), f[2])
return 1
`)

// inboxReplayScript makes the dead letter pid run once more, first of its
// queue (after the run of its queue in progress, if any). Returns 1, or 0
// when pid is not a dead letter.
var inboxReplayScript = redis.NewScript(luaCommon + `
local pid = ARGV[2]
local d = B..'d:'..pid
local f = redis.call('HMGET', d, 'st', 'q', 'recv')
if f[1] ~= 'dead' then return 0 end
local q = f[2]
local qk = B..'q:'..q
redis.call('HSET', d, 'st', 'kept', 'rp', 1)
redis.call('ZREM', X, pid)
redis.call('ZADD', P, f[3], pid)
if redis.call('ZSCORE', L, q) then
  redis.call('LINSERT', qk, 'AFTER', redis.call('LINDEX', qk, 0), pid)
else
  redis.call('LPUSH', qk, pid)
  redis.call('ZADD', R, now, q)
end
return 1
`)
