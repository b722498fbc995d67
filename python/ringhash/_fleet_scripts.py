"""The fleet's Lua scripts: every membership change is one of them, atomic on
the server and timed by the server's clock.

KEYS: 1 members (hash name -> weight), 2 expiry (zset name -> ms), 3 owners
(hash name -> member token), 4 epoch (counter, never expires), 5 settings
(hash). ARGV[1] is the ring settings the caller uses (stored on first use,
compared afterwards), ARGV[2] the channel changes are published on.

Every script first removes the members whose lease has passed on the server's
clock, so whichever client next touches the fleet detects expiries (no daemon).
Any change of the member set or a weight increments the epoch in the same
script and publishes it. A new epoch counter starts at the server's clock in
microseconds (``seed_from_clock``), so a Redis that lost its data starts again
above every epoch it gave; epochs go to clients as strings (exact).
"""

from __future__ import annotations

from ._redisio import seed_from_clock

PROLOGUE = (
    """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local stored = redis.call('HGET', KEYS[5], 'ring')
if not stored then
  redis.call('HSET', KEYS[5], 'ring', ARGV[1])
elseif stored ~= ARGV[1] then
  return {'settings', stored}
end
local changed = false
local gone = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
if #gone > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
  redis.call('HDEL', KEYS[1], unpack(gone))
  redis.call('HDEL', KEYS[3], unpack(gone))
  changed = true
end
local function finish(status, extra)
  local epoch
  if changed then
    epoch = redis.call('INCR', KEYS[4])
"""
    + seed_from_clock("epoch", "KEYS[4]", "    ")
    + """    epoch = string.format('%d', epoch)
    redis.call('PUBLISH', ARGV[2], epoch)
  else
    epoch = redis.call('GET', KEYS[4]) or '0'
  end
  return {status, epoch, extra}
end
"""
)

# ARGV: 3 name, 4 weight, 5 ttl ms, 6 token
JOIN = (
    PROLOGUE
    + """
local owner = redis.call('HGET', KEYS[3], ARGV[3])
if owner and owner ~= ARGV[6] then
  return finish('held', owner)
end
if redis.call('HGET', KEYS[1], ARGV[3]) ~= ARGV[4] then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  changed = true
end
redis.call('HSET', KEYS[3], ARGV[3], ARGV[6])
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[3])
return finish('ok', '')
"""
)

# ARGV: 3 name, 4 token, 5 ttl ms
HEARTBEAT = (
    PROLOGUE
    + """
if redis.call('HGET', KEYS[3], ARGV[3]) ~= ARGV[4] then
  return finish('lost', '')
end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[3])
return finish('ok', '')
"""
)

# ARGV: 3 name, 4 token, 5 weight
SET_WEIGHT = (
    PROLOGUE
    + """
if redis.call('HGET', KEYS[3], ARGV[3]) ~= ARGV[4] then
  return finish('lost', '')
end
if redis.call('HGET', KEYS[1], ARGV[3]) ~= ARGV[5] then
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[5])
  changed = true
end
return finish('ok', '')
"""
)

# ARGV: 3 name, 4 token
LEAVE = (
    PROLOGUE
    + """
if redis.call('HGET', KEYS[3], ARGV[3]) == ARGV[4] then
  redis.call('HDEL', KEYS[1], ARGV[3])
  redis.call('HDEL', KEYS[3], ARGV[3])
  redis.call('ZREM', KEYS[2], ARGV[3])
  changed = true
end
return finish('ok', '')
"""
)

# the epoch and the members, read together
STATE = (
    PROLOGUE
    + """
local members = redis.call('HGETALL', KEYS[1])
return finish('ok', members)
"""
)

SCRIPTS = {
    "join": JOIN,
    "heartbeat": HEARTBEAT,
    "set_weight": SET_WEIGHT,
    "leave": LEAVE,
    "state": STATE,
}
