"""The Redis store's key names and Lua scripts: every step that must be atomic.

Keys of one generation (they share a `{hash tag}`, so they sit in one slot):

    <p>{id}:log    a Redis Stream: frame i is entry `0-(i+1)` (field `f`); the end is one
                   more entry (field `e` = done | lost)
    <p>{id}:meta   hash: owner (the generating process's token), ended, cancel, and
                   user (who started it, when the server has users)
    <p>{id}:subs   set: tokens of the processes that have subscribers attached
    <p>{id}:live   pub/sub channel: `f<i>:<frame>` for each frame, `e<i>:<reason>` at the end

Keys of one process (its token is random per store):

    <p>proc:<token>         its lease, renewed by its lease thread (liveness.py)
    <p>proc:<token>:owns    streams it generates      <p>proc:<token>:subs  streams it serves
    <p>procs                every token, so that a live process can find the dead ones
    <p>ctl:<token>          pub/sub channel to the owner: `C<id>` cancel, `B<id>` a first
                            subscriber came, `I<id>` the last one left

Explicit entry ids make a read by frame index exact (`XRANGE 0-(start+1) +`), make a
retried append idempotent (the same frame at the same id is found, not added twice), and
make the end written by a reaper collide with the next frame of an owner that was taken
for dead, so that owner stops (`StreamLost`) instead of writing past the end.
"""

from __future__ import annotations

from typing import Final


class StreamKeys:
    """The names of one stream's keys, built once per stream."""

    __slots__ = ("channel", "log", "meta", "subs")

    def __init__(self, prefix: str, stream_id: str) -> None:
        base = f"{prefix}{{{stream_id}}}:"
        self.log = base + "log"
        self.meta = base + "meta"
        self.subs = base + "subs"
        self.channel = base + "live"


READ: Final = """
-- KEYS: log meta; ARGV: id sequence of the first frame wanted, count
local state = redis.call('HMGET', KEYS[2], 'owner', 'ended')
if not state[1] then return false end
return {state[2] or '', redis.call('XRANGE', KEYS[1], '0-' .. ARGV[1], '+', 'COUNT', ARGV[2]),
        redis.call('XLEN', KEYS[1])}
"""

# One flush of the process's writer: creations, frames and ends of any number of streams, in order.
# An entry is (kind, stream id, sequence, payload): kind `c` creates the stream for this process
# (payload: the user who started it, or empty); `f` adds frame `payload` as entry 0-<sequence> and
# publishes it; `e` ends the stream there if it is still ours (payload `<done|lost>:<keep ms>`).
# Returns the failures only, as (entry number, code) pairs: `lost` (someone else wrote the end
# there), `gone` (the keys vanished).
APPEND: Final = """
-- ARGV: prefix, token, running ttl ms, then entries of 4
local prefix, token, running_ms = ARGV[1], ARGV[2], ARGV[3]
local owns = prefix .. 'proc:' .. token .. ':owns'
local failed = {}
local skip = {}
local n = 0
for i = 4, #ARGV, 4 do
  n = n + 1
  local kind, sid, seq, payload = ARGV[i], ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]
  local base = prefix .. '{' .. sid .. '}:'
  local log, channel = base .. 'log', base .. 'live'
  if skip[sid] then
    failed[#failed + 1] = n
    failed[#failed + 1] = skip[sid]
  elseif kind == 'c' then
    redis.call('HSET', base .. 'meta', 'owner', token)
    if payload ~= '' then redis.call('HSET', base .. 'meta', 'user', payload) end
    redis.call('PEXPIRE', base .. 'meta', running_ms)
    redis.call('SADD', owns, sid)
  elseif kind == 'f' then
    local id = '0-' .. seq
    local added
    if seq == '1' then
      added = redis.pcall('XADD', log, id, 'f', payload)
      redis.call('PEXPIRE', log, running_ms)
    else
      added = redis.pcall('XADD', log, 'NOMKSTREAM', id, 'f', payload)
    end
    local code = nil
    if type(added) == 'table' and added.err then
      local there = redis.call('XRANGE', log, id, id)
      if #there == 0 or there[1][2][1] ~= 'f' or there[1][2][2] ~= payload then
        code = 'lost'
      end
    elseif not added then
      code = 'gone'
    end
    if code then
      skip[sid] = code
      failed[#failed + 1] = n
      failed[#failed + 1] = code
    else
      redis.call('PUBLISH', channel, 'f' .. (seq - 1) .. ':' .. payload)
    end
  else
    local meta = base .. 'meta'
    local reason, keep_ms = string.match(payload, '^(%a+):(%d+)$')
    redis.call('SREM', owns, sid)
    if redis.call('HGET', meta, 'owner') == token and redis.call('HEXISTS', meta, 'ended') == 0 then
      redis.call('XADD', log, '0-' .. seq, 'e', reason)
      redis.call('HSET', meta, 'ended', reason)
      for _, key in ipairs({log, meta, base .. 'subs'}) do redis.call('PEXPIRE', key, keep_ms) end
      redis.call('PUBLISH', channel, 'e' .. (seq - 1) .. ':' .. reason)
    end
  end
end
return failed
"""

JOIN: Final = """
-- KEYS: meta subs, this process's subs; ARGV: token, stream id, key prefix
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
redis.call('SADD', KEYS[3], ARGV[2])
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  if redis.call('SCARD', KEYS[2]) == 1 and redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
    redis.call('PUBLISH', ARGV[3] .. 'ctl:' .. owner, 'B' .. ARGV[2])
  end
end
return 1
"""

LEAVE: Final = """
-- KEYS: meta subs, this process's subs; ARGV: token, stream id, key prefix
redis.call('SREM', KEYS[3], ARGV[2])
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 and redis.call('SCARD', KEYS[2]) == 0 then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner and redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
    redis.call('PUBLISH', ARGV[3] .. 'ctl:' .. owner, 'I' .. ARGV[2])
  end
end
return 1
"""

# 0: no such stream; 1: its owner is asked to stop; 2: it has ended already.
CANCEL: Final = """
-- KEYS: meta; ARGV: stream id, key prefix
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 2 end
redis.call('HSET', KEYS[1], 'cancel', '1')
redis.call('PUBLISH', ARGV[2] .. 'ctl:' .. owner, 'C' .. ARGV[1])
return 1
"""

# Ends a dead (or retiring) process's streams with `lost`, tells their followers, and
# takes its presence away (telling owners who is left).
_BURY_FUNCTION: Final = """
local prefix = ARGV[2]
local function stream_keys(sid)
  local base = prefix .. '{' .. sid .. '}:'
  return base .. 'log', base .. 'meta', base .. 'subs', base .. 'live'
end
local function bury(token, keep_ms)
  local base = prefix .. 'proc:' .. token
  for _, sid in ipairs(redis.call('SMEMBERS', base .. ':owns')) do
    local log, meta, subs, channel = stream_keys(sid)
    if redis.call('HGET', meta, 'owner') == token
       and redis.call('HEXISTS', meta, 'ended') == 0 then
      local index = redis.call('XLEN', log)
      redis.call('XADD', log, '0-' .. (index + 1), 'e', 'lost')
      redis.call('HSET', meta, 'ended', 'lost')
      for _, key in ipairs({log, meta, subs}) do redis.call('PEXPIRE', key, keep_ms) end
      redis.call('PUBLISH', channel, 'e' .. index .. ':lost')
    end
  end
  for _, sid in ipairs(redis.call('SMEMBERS', base .. ':subs')) do
    local _, meta, subs = stream_keys(sid)
    if redis.call('SREM', subs, token) == 1 and redis.call('SCARD', subs) == 0 then
      local owner = redis.call('HGET', meta, 'owner')
      if owner and redis.call('HEXISTS', meta, 'ended') == 0 then
        redis.call('PUBLISH', prefix .. 'ctl:' .. owner, 'I' .. sid)
      end
    end
  end
  redis.call('DEL', base, base .. ':owns', base .. ':subs')
  redis.call('SREM', prefix .. 'procs', token)
end
"""

# The lease thread's beat. Returns {lease was still held, still listed (not buried),
# processes buried now}.
HEARTBEAT: Final = _BURY_FUNCTION + """
-- ARGV: token, key prefix, lease ms, keep ms, registry ms
local me = ARGV[1]
local base = prefix .. 'proc:' .. me
local held = redis.call('SET', base, '1', 'PX', ARGV[3], 'GET')
local listed = redis.call('SADD', prefix .. 'procs', me) == 0
for _, key in ipairs({prefix .. 'procs', base .. ':owns', base .. ':subs'}) do
  redis.call('PEXPIRE', key, ARGV[5])
end
local buried = 0
for _, other in ipairs(redis.call('SMEMBERS', prefix .. 'procs')) do
  if other ~= me and redis.call('EXISTS', prefix .. 'proc:' .. other) == 0 then
    bury(other, ARGV[4])
    buried = buried + 1
  end
end
return {held and 1 or 0, listed and 1 or 0, buried}
"""

RETIRE: Final = _BURY_FUNCTION + """
-- ARGV: token, key prefix, keep ms
bury(ARGV[1], ARGV[3])
return 1
"""

# The keys of finished streams this process evicts to stay under --resume-max-mb.
FORGET: Final = """
-- ARGV: key prefix, then stream ids
for i = 2, #ARGV do
  local base = ARGV[1] .. '{' .. ARGV[i] .. '}:'
  if redis.call('HEXISTS', base .. 'meta', 'ended') == 1 then
    redis.call('DEL', base .. 'log', base .. 'meta', base .. 'subs')
  end
end
return 1
"""
