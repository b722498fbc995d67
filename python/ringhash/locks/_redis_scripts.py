"""The Lua scripts of ``RedisLockTable`` (``_redis.py``): every state change of a lock
is one of these, atomic on the server and timed by the server's clock. What the table
sends them and what their replies say is ``_redis_calls.py``.

Keys of one lock (all in one Redis Cluster hash slot): ``holders`` (sorted set, token ->
expiry in ms), ``info`` (hash, token -> "mode|owner", and the current ``mode``), ``queue``
(sorted set of waiter ids in arrival order), ``qexp`` (waiter heartbeats), ``tokens`` (the
fencing counter, never expires), ``qseq`` and ``qinfo`` (queue order and waiter details:
"mode|since|ttl|floor|owner"), ``claims`` (hash, token -> "deadline|waiter" of grants
handed on but not yet collected), ``released`` (the last release's "token|owner", for a
minute: a release sent again finds it), and per waiter id ``g:<waiter>`` (the token
granted to it, for idempotent acquires) and ``wake:<waiter>`` (the list a blocked waiter
pops from).

A lone holder is one key instead: ``solo`` (the string "-token|mode|waiter|owner",
expiring with the lease), which a release deletes; while it exists, ``holders`` and
``info`` do not. A lock granted nobody held or waited for (the common, uncontended
case) gets one. An exclusive one stays one key while others queue behind it (the first
to queue marks it, '+' for '-', so that its release looks for a waiter), and a
release hands an exclusive lock on as one; a shared one is turned into the general
form by the first acquire that finds it taken (``unsolo``), so none has waiters.

Direct hand-off: a script that may make the head of the queue grantable (a release, a
withdrawal, a purge of expired holders) grants it the lock there and then, with the mode,
TTL and owner it queued with (``hand_on``), and pushes "token|expiry" onto that waiter's
list; the waiter pops its lease and returns it, with no script of its own. A run of shared
waiters is granted together. A list keeps a grant that arrives before its waiter blocks
(or while it is between two pops, when its next ACQUIRE returns the grant, as for a
re-sent acquire). A grant nobody pops is taken back: the pop is the waiter's receipt, and
a grant still in its list ``claim`` ms after it was made (the waiter TTL: its process died
while it waited) is revoked by the next script that purges the lock.
"""

from .._redisio import seed_from_clock
from ._redis_calls import _Keys

__all__ = ["ACQUIRE", "CANCEL", "EXTEND", "HOLDERS", "RELEASE", "SCRIPTS", "VALID", "WAITING"]


# Every script takes one key, the lock's base ``{prefix}{{name}}`` (what a
# cluster client routes by), and names the lock's keys from it: fewer arguments
# to send and parse on every call, and all of them in the base's hash slot.
# Each redis.call costs a script about a microsecond, so the common cases (a
# free lock, the release of a lone holder) take short paths on the ``solo`` key
# before anything else (no clock read, no key table); the functions only the
# long paths call are defined after the short paths have returned (measured,
# one call at a time: the definitions cost a script 3-7 us).


def _part(part: str) -> str:
    """Lua for the key of one of ``_Keys.PARTS``, named from the base: for the short
    paths, which run before the key table ``K`` is built (``_K``)."""
    if part not in _Keys.PARTS:
        raise ValueError(f"not a part of a lock's keys: {part!r}")
    return f"KEYS[1] .. ':{part}'"


def _waiter_key(kind: str, waiter: str) -> str:
    """Lua for a key of one waiter id: its wake-up list (``_Keys.wake``) or its grant
    record; the long paths call ``wake_key`` and ``grant_key`` (``_NOW``)."""
    part = {"wake": _Keys.WAKE, "grant": _Keys.GRANT}[kind]
    return f"KEYS[1] .. ':{part}:' .. {waiter}"


# Every script starts with this: the lone holder's key and how to read it.
_SOLO = (
    f"local S = {_part('solo')}\n"
    + """
-- token, mode, waiter, owner, and whether waiters may have queued behind it
-- (marked '+', not '-': a release then looks for one to hand on to)
local function solo_fields(v)
  local mark, token, mode, waiter, owner = string.match(v, '^([-+])(%d+)|(%a+)|([^|]*)|(.*)$')
  return token, mode, waiter, owner, mark == '+'
end
"""
)

_K = "local b = KEYS[1]\nlocal K = {" + ", ".join(f"b .. ':{part}'" for part in _Keys.PARTS) + "}\n"

# The long paths' start (after the short paths have returned: what is defined
# here costs every call that runs it): the key table, the waiter keys, the clock.
_NOW = (
    _K
    + f"local function wake_key(w) return {_waiter_key('wake', 'w')} end\n"
    + f"local function grant_key(w) return {_waiter_key('grant', 'w')} end\n"
    + """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local nows = string.format('%d', now)
"""
)

# A lone holder's short paths (RELEASE, EXTEND, VALID): ``solo`` is the only
# holder there is while it exists, so a token it does not name holds nothing.
_SOLO_MINE = (
    _SOLO
    + """
local solo = redis.call('GET', S)
local mine, marked = false, false
if solo then
  local token, _, _, owner, m = solo_fields(solo)
  mine, marked = token == ARGV[1] and owner == ARGV[2], m
end
"""
)

# The general form of a lone (shared) holder, that others may join: its lease in
# ``holders``/``info`` and its grant record ``g:<waiter>`` (what a re-sent
# acquire or a cancel of its waiter id finds), expiring when the lease does.
# The expiry is rebuilt from PTTL (whole ms, read after ``now``) plus one ms:
# never earlier than the holder was told.
_UNSOLO = """
local function unsolo(v)  -- v: the value of S
  if not v then return end
  local token, mode, waiter, owner = solo_fields(v)
  local left = redis.call('PTTL', S) + 1
  redis.call('DEL', S)
  local exp = now + left
  redis.call('ZADD', K[1], exp, token)
  redis.call('HSET', K[2], token, mode .. '|' .. owner, 'mode', mode)
  redis.call('PEXPIREAT', K[1], exp)
  redis.call('PEXPIREAT', K[2], exp)
  redis.call('SET', grant_key(waiter), token, 'PX', left)
end
"""


# Expired holders, grants nobody collected and waiters whose heartbeat lapsed
# leave; returns how many holders remain, the first one's expiry (nil if none or
# a lone holder) and the lone holder's token (nil if none, or revoked here).
# ``gone``: the caller has just deleted the holders (a release of the last one),
# so there are none to read; ``solo``: the token of the lone holder there is.
_PURGE = """
local function purge(gone, solo)
  local claims = redis.call('HGETALL', K[9])
  for i = 1, #claims, 2 do
    local deadline, waiter = string.match(claims[i + 1], '^(%d+)|(.*)$')
    if tonumber(deadline) <= now then
      redis.call('HDEL', K[9], claims[i])
      local list = wake_key(waiter)
      if redis.call('EXISTS', list) == 1 then
        -- never popped: whoever queued for it is gone; the lease goes back
        redis.call('DEL', list, grant_key(waiter))
        if claims[i] == solo then
          redis.call('DEL', S)
          solo = nil
        else
          redis.call('ZREM', K[1], claims[i])
          redis.call('HDEL', K[2], claims[i])
        end
      end
    end
  end
  local n, first = 0, nil
  if solo then
    n = 1
  elseif not gone then
    local f = redis.call('ZRANGE', K[1], '0', '0', 'WITHSCORES')
    if f[2] and tonumber(f[2]) <= now then
      local dead = redis.call('ZRANGEBYSCORE', K[1], '-inf', nows)
      redis.call('ZREMRANGEBYSCORE', K[1], '-inf', nows)
      redis.call('HDEL', K[2], unpack(dead))
      redis.call('HDEL', K[9], unpack(dead))
      f = redis.call('ZRANGE', K[1], '0', '0', 'WITHSCORES')
    end
    if f[2] then
      n, first = redis.call('ZCARD', K[1]), tonumber(f[2])
    else
      redis.call('HDEL', K[2], 'mode')
    end
  end
  local stale = redis.call('ZRANGEBYSCORE', K[4], '-inf', nows)
  if #stale > 0 then
    redis.call('ZREMRANGEBYSCORE', K[4], '-inf', nows)
    redis.call('ZREM', K[3], unpack(stale))
    redis.call('HDEL', K[7], unpack(stale))
  end
  return n, first, solo
end
"""

# A grant: a token (unless it would not exceed ``floor``, the highest token the
# waiter's table has seen: then nil and the counter) and its lease: ``alone`` (no
# one else holds the lock) and exclusive, a lone holder (``solo``, which names the
# waiter); otherwise in ``holders`` and ``info``, with its grant record
# ``g:<waiter>``, and the caller keeps those keys' expiry. Returns the token and
# the expiry, as numbers and as strings.
#
# A number passed to redis.call is formatted with "%.17g" on the way (as one joined
# to a string is with "%.14g"): about 2,500 instructions each (measured with
# callgrind), a good part of a contended grant's server time. So literals are
# written as strings, and a number used several times (``now``, a grant's token
# and expiry) is formatted once, with '%d'.
_GRANT = (
    """
local function grant(waiter, mode, ttl, owner, floor, alone)  -- ttl: ms, a string
  local token = redis.call('INCR', K[5])
"""
    + seed_from_clock("token", "K[5]", "  ")
    + """
  if token <= floor then
    redis.call('DECR', K[5])
    return nil, token - 1
  end
  local exp = now + ttl
  local t, e = string.format('%d', token), string.format('%d', exp)
  if alone and mode ~= 'shared' then  -- marked: granted while others may wait
    redis.call('SET', S, '+' .. t .. '|' .. mode .. '|' .. waiter .. '|' .. owner, 'PX', ttl)
    return token, exp, t, e
  end
  redis.call('ZADD', K[1], e, t)
  redis.call('HSET', K[2], t, mode .. '|' .. owner, 'mode', mode)
  redis.call('SET', grant_key(waiter), t, 'PX', ttl)
  return token, exp, t, e
end
local function dequeue(waiter)
  redis.call('ZREM', K[3], waiter)
  redis.call('ZREM', K[4], waiter)
  redis.call('HDEL', K[7], waiter)
end
"""
)

# Grant the head of the queue the lock if it can have it now (nothing held, or
# it and the holders are shared; ``held``: how many hold it, as the caller counted
# them), and the run of shared waiters behind a shared head: each gets
# "token|expiry" on its list (expiring with the lease) and a claim that
# ``claim`` ms from now the list must be empty (popped). A head
# whose table has seen a higher token than the counter gives stays at the head
# and is woken with '0' instead: its own ACQUIRE refuses ({-1, ...}) and its
# caller's withdrawal hands on to the next.
_HAND_ON = """
local function hand_on(claim, held)
  claim = tonumber(claim)
  while true do
    local head = redis.call('ZRANGE', K[3], '0', '0')[1]
    if not head then return end
    local mode, _, ttl, floor, owner = string.match(
      redis.call('HGET', K[7], head) or '', '^(%a+)|(%d+)|(%d+)|(%d+)|(.*)$')
    if held > 0 and (mode ~= 'shared'
      or redis.call('HGET', K[2], 'mode') ~= 'shared') then return end
    local list = wake_key(head)
    local token, _, t, e
    if mode then token, _, t, e = grant(head, mode, ttl, owner, tonumber(floor), held == 0) end
    redis.call('DEL', list)
    if not token then  -- the floor (or no details, which cannot happen): it tries itself
      redis.call('RPUSH', list, '0')
      redis.call('PEXPIRE', list, claim)
      return
    end
    dequeue(head)
    redis.call('RPUSH', list, t .. '|' .. e)
    redis.call('PEXPIREAT', list, e)
    redis.call('HSET', K[9], t, string.format('%d|', now + claim) .. head)
    if redis.call('PTTL', K[9]) < tonumber(ttl) then redis.call('PEXPIRE', K[9], ttl) end
    if mode ~= 'shared' then return end  -- a lone holder now
    if held == 0 then keep_until_last(e) else keep_until_last() end
    held = held + 1
  end
end
"""

_OWNS = """
local function owns(token, owner)
  local score = redis.call('ZSCORE', K[1], token)
  if not score or tonumber(score) <= now then return false end
  local v = redis.call('HGET', K[2], token)
  if not v then return false end
  local bar = string.find(v, '|', 1, true)
  return string.sub(v, bar + 1) == owner
end
local function keep_until_last(alone)  -- alone: the expiry of the only holder
  local last = alone or redis.call('ZRANGE', K[1], '-1', '-1', 'WITHSCORES')[2]
  if last then
    redis.call('PEXPIREAT', K[1], last)
    redis.call('PEXPIREAT', K[2], last)
  end
end
"""

# KEYS: base; ARGV: waiter, mode, ttl_ms, owner, enqueue(0/1), waiter_ttl_ms, floor
#
# Returns a new grant's token alone (its lease ends ttl_ms after the grant: one
# integer to parse, not an array), else {1, token, expiry, now} for an earlier
# grant to this waiter id, {0, 0, ms until the first holder expires or -1, now}
# when not granted, or {-1, counter, -1, now} (below).
#
# Idempotent for a waiter id (chosen by the client before it sends): a re-sent
# acquire (redis-py retrying after a socket timeout, or a stalled command run
# once the server resumes) returns the grant the first one made, recorded in
# ``g:<waiter>`` (the token, expiring with the lease), and CANCEL of that waiter
# id releases it: a grant the caller never received is never left to run out
# its TTL. CANCEL leaves 'x' there instead, and a late acquire of that id is
# refused.
#
# ``floor`` is the highest token this client has seen for the lock: a counter
# below it went back (a failover to a replica that missed writes, an older
# snapshot restored; a counter lost outright starts again from the clock,
# ``seed_from_clock``), and the script refuses ({-1, counter}) rather than issue a token
# that goes backwards.
ACQUIRE = (
    _SOLO
    + f"local TOKENS, HOLDERS, QUEUE = {_part('tokens')}, {_part('holders')}, {_part('queue')}\n"
    + f"local g = {_waiter_key('grant', 'ARGV[1]')}\n"
    + """
if redis.call('EXISTS', S, HOLDERS, QUEUE, g) == 0 then
  -- nothing held, nobody waiting, no earlier try of this waiter id: a lone holder
  local token = redis.call('INCR', TOKENS)
"""
    + seed_from_clock("token", "TOKENS", "  ")
    + """
  if token <= tonumber(ARGV[7]) then
    redis.call('DECR', TOKENS)
    return {-1, token - 1, -1, 0}
  end
  local v = '-' .. string.format('%d', token) .. '|' .. ARGV[2] .. '|' .. ARGV[1] .. '|' .. ARGV[4]
  redis.call('SET', S, v, 'PX', ARGV[3])
  return token
end
local solo = redis.call('GET', S)
local stoken, smode, smarked
if solo then
  local waiter, _
  stoken, smode, waiter, _, smarked = solo_fields(solo)
  if waiter == ARGV[1] then  -- granted to this waiter id: collected here, the receipt
    redis.call('DEL', """
    + _waiter_key("wake", "ARGV[1]")
    + """)
    redis.call('HDEL', """
    + _part("claims")
    + """, stoken)
    return {1, tonumber(stoken), redis.call('PTTL', S), 0}
  end
end
"""
    + _NOW
    + """
local prior = redis.call('GET', g)
if prior == 'x' then return {0, 0, -1, now} end  -- its caller gave up: never grant it
"""
    + _UNSOLO
    + _PURGE
    + _OWNS
    + _GRANT
    + _HAND_ON
    + """
if smode == 'shared' then  -- others may join it: the general form
  unsolo(solo)
  stoken = nil
end
local nholders, first
nholders, first, stoken = purge(false, stoken)
if prior then
  local score = redis.call('ZSCORE', K[1], prior)
  if score and tonumber(score) > now then
    -- collected here, not popped: the grant's receipt
    redis.call('DEL', wake_key(ARGV[1]))
    redis.call('HDEL', K[9], prior)
    return {1, tonumber(prior), tonumber(score), now}
  end
end
local hmode = smode
if not stoken then hmode = redis.call('HGET', K[2], 'mode') end
local compatible = (nholders == 0) or (ARGV[2] == 'shared' and hmode == 'shared')
local rank = redis.call('ZRANK', K[3], ARGV[1])
if compatible and (rank or redis.call('ZCARD', K[3])) == 0 then
  local alone = nholders == 0
  local token, exp, _, e = grant(ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[7]), alone)
  if not token then return {-1, exp, -1, now} end
  if rank then
    dequeue(ARGV[1])
    redis.call('DEL', wake_key(ARGV[1]))
  end
  if ARGV[2] == 'shared' then
    if alone then keep_until_last(e) else keep_until_last() end
    hand_on(ARGV[6], nholders + 1)  -- the shared waiters behind, if any
  end
  return token
end
if ARGV[5] == '1' then
  if stoken and not smarked then  -- its release must now look for a waiter
    redis.call('SETRANGE', S, '0', '+')
  end
  if not rank then
    redis.call('ZADD', K[3], string.format('%d', redis.call('INCR', K[6])), ARGV[1])
    redis.call('HSET', K[7], ARGV[1],
      ARGV[2] .. '|' .. nows .. '|' .. ARGV[3] .. '|' .. ARGV[7] .. '|' .. ARGV[4])
  end
  redis.call('ZADD', K[4], string.format('%d', now + ARGV[6]), ARGV[1])
  -- The queue's keys expire together, 2 waiter TTLs after they were last refreshed:
  -- refreshed together, and emptied together (a queue that starts again has no
  -- TTL), so the queue's own TTL speaks for all; it must outlast the heartbeat.
  if redis.call('PTTL', K[3]) < 1.5 * tonumber(ARGV[6]) then
    local keep = string.format('%d', 2 * ARGV[6])
    for i = 3, 7 do
      if i ~= 5 then redis.call('PEXPIRE', K[i], keep) end
    end
  end
end
if nholders == 0 or hmode == 'shared' then
  hand_on(ARGV[6], nholders)  -- the head may be grantable (a purge above freed the lock)
  first = redis.call('ZRANGE', K[1], '0', '0', 'WITHSCORES')[2]
  if not first and redis.call('EXISTS', S) == 1 then first = now + redis.call('PTTL', S) end
elseif stoken then
  first = now + redis.call('PTTL', S)
end
local hint = -1
if first then hint = tonumber(first) - now end
return {0, 0, hint, now}
"""
)

# KEYS: base; ARGV: token, owner, waiter_ttl_ms, release id (the client's, per call)
#
# Returns 1 (released), 0 (not held by that token and owner: the lease was lost),
# or 2: released already, by an earlier send of this call whose reply was lost
# (sent again after a connection error or a timeout). A release leaves "token|id" in
# ``released`` for a minute (one key per lock, the last release), which a second send
# of the same call finds; another call (a second release) or a later one says 0.
_AGAIN = "redis.call('GET', R) == me and 2 or 0"
RELEASE = (
    _SOLO_MINE
    + f"local R, me = {_part('released')}, ARGV[1] .. '|' .. ARGV[4]\n"
    + f"""
if solo then
  if not mine then return {_AGAIN} end
  redis.call('DEL', S)
  redis.call('SET', R, me, 'PX', '60000')
  if not marked then return 1 end  -- nobody queued behind it
end
"""
    + _NOW
    + _OWNS
    + f"""
local ok, gone = true, true
if solo then
  redis.call('HDEL', K[9], ARGV[1])
else
  ok, gone = owns(ARGV[1], ARGV[2]), false
  if ok then
    if redis.call('ZCARD', K[1]) == 1 then
      redis.call('DEL', K[1], K[2])
      gone = true
    else
      redis.call('ZREM', K[1], ARGV[1])
      redis.call('HDEL', K[2], ARGV[1])
    end
    redis.call('HDEL', K[9], ARGV[1])
    redis.call('SET', R, me, 'PX', '60000')
  end
  if redis.call('EXISTS', K[3]) == 0 then return ok and 1 or {_AGAIN} end
end
local result = 1
if not ok then result = {_AGAIN} end
"""
    + _PURGE
    + _GRANT
    + _HAND_ON
    + """
-- someone waits: hand on
hand_on(ARGV[3], (purge(gone)))
return result
"""
)

# KEYS: base; ARGV: token, owner, ttl_ms
EXTEND = (
    _SOLO_MINE
    + """
if solo then
  if not mine then return {0, 0, 0} end
  redis.call('PEXPIRE', S, ARGV[3])
  return {1, tonumber(ARGV[3]), 0}
end
"""
    + _NOW
    + _OWNS
    + """
if not owns(ARGV[1], ARGV[2]) then return {0, 0, now} end
local exp = now + tonumber(ARGV[3])
redis.call('ZADD', K[1], 'XX', exp, ARGV[1])
keep_until_last()
return {1, exp, now}
"""
)

# KEYS: base; ARGV: token, owner
VALID = (
    _SOLO_MINE
    + """
if solo then
  if mine then return 1 end
  return 0
end
"""
    + _NOW
    + _OWNS
    + """
if owns(ARGV[1], ARGV[2]) then return 1 end
return 0
"""
)

# KEYS: base; ARGV: waiter, waiter_ttl_ms
# Withdraws the waiter, releases a lease granted to it that its caller gave up
# on (see ACQUIRE), and leaves a tombstone (for a minute) so that an acquire of
# that waiter still in flight is refused when it arrives; then hands on to the new head.
CANCEL = (
    _SOLO
    + _NOW
    + _OWNS
    + _GRANT
    + _HAND_ON
    + """
local g = grant_key(ARGV[1])
dequeue(ARGV[1])
redis.call('DEL', wake_key(ARGV[1]))
local released, held = 0, nil
local solo = redis.call('GET', S)
if solo then  -- (a shared one has nobody queued: the first acquire behind it converts it)
  local token, _, waiter = solo_fields(solo)
  held = 1
  if waiter == ARGV[1] then  -- granted to the waiter that gives up: released
    redis.call('DEL', S)
    redis.call('HDEL', K[9], token)
    released, held = 1, 0
  end
end
local token = redis.call('GET', g)
if token and token ~= 'x' then
  redis.call('HDEL', K[9], token)
  if redis.call('ZREM', K[1], token) == 1 then
    redis.call('HDEL', K[2], token)
    held = redis.call('ZCARD', K[1])
    if held == 0 then redis.call('DEL', K[1], K[2]) end
    released = 1
  end
end
redis.call('SET', g, 'x', 'PX', '60000')
hand_on(ARGV[2], held or redis.call('ZCARD', K[1]))
return released
"""
)

# KEYS: base; returns token, expiry ms, mode|owner ... and now
HOLDERS = (
    _SOLO
    + _NOW
    + """
local solo = redis.call('GET', S)
if solo then  -- read as it is (a listing changes nothing); expiry as unsolo makes it
  local token, mode, _, owner = solo_fields(solo)
  return {now, token, now + redis.call('PTTL', S) + 1, mode .. '|' .. owner}
end
local out = {now}
local live = redis.call('ZRANGEBYSCORE', K[1], '(' .. nows, '+inf', 'WITHSCORES')
for i = 1, #live, 2 do
  table.insert(out, live[i])
  table.insert(out, live[i + 1])
  table.insert(out, redis.call('HGET', K[2], live[i]) or '')
end
return out
"""
)

# KEYS: base. The queue in arrival order, as each waiter's details ("mode|since|ttl|
# floor|owner"; nil where they are missing), read in one step; HMGET in parts, since
# Lua's unpack has a limit of a few thousand values.
WAITING = (
    f"local ids = redis.call('ZRANGE', {_part('queue')}, '0', '-1')\n"
    + f"local Q, out = {_part('qinfo')}, {{}}\n"
    + """
for i = 1, #ids, 1000 do
  local part = redis.call('HMGET', Q, unpack(ids, i, math.min(i + 999, #ids)))
  for j = 1, #part do out[#out + 1] = part[j] end
end
return out
"""
)

#: Every script by the name the table calls it.
SCRIPTS = dict(
    acquire=ACQUIRE,
    release=RELEASE,
    extend=EXTEND,
    valid=VALID,
    cancel=CANCEL,
    holders=HOLDERS,
    waiting=WAITING,
)
