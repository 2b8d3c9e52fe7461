"""The Redis store's Lua scripts: every step that must be atomic, and only those. Each
touches the keys of one stream, or of one process, and names all of them in KEYS, so that
on a cluster each runs on the one master serving that slot (keyspace.py has the names).

What a stream's keys hold:

    log    a Redis Stream: frame i is entry `0-(i+1)` (field `f`); the end is one more
           entry (field `e` = done | lost)
    meta   hash: owner (the generating process's token), ended, cancel, and user (who
           started it, when the server has users)
    subs   set: tokens of the processes that have subscribers attached
    live   channel: `f<i>:<frame>` for each frame while other processes follow it,
           `h<n>` when they start to (the log has n frames), `e<i>:<reason>` at the end

Creations and frames need no script: the writer sends plain `HSET meta owner <token>` and
`PEXPIRE`, and `XADD log NOMKSTREAM 0-(i+1)` (log.py).
Explicit entry ids make a read by frame index exact (`XRANGE 0-(start+1) +`), and make the
end written by a reaper collide with the next frame of an owner that was taken for dead,
so that owner stops (`StreamLost`) instead of writing past the end.

A script that publishes is given the command (`PUBLISH`, or `SPUBLISH` on a cluster, where
a stream's channel lives in its slot) as an argument. Control messages to an owner go on
plain `PUBLISH`: they are few (a first subscriber, the last one, a cancel), and a script
may send them whatever slot it runs in.
"""

from __future__ import annotations

from typing import Final

from .keyspace import StreamKeys

__all__ = ["BEAT", "BURY_STREAM", "CANCEL", "DROP_PRESENCE", "END", "FORGET",
           "JOIN", "LEAVE", "READ", "StreamKeys"]

READ: Final = """
-- KEYS: log meta; ARGV: id sequence of the first frame wanted, count
local state = redis.call('HMGET', KEYS[2], 'owner', 'ended')
if not state[1] then return false end
return {state[2] or '', redis.call('XRANGE', KEYS[1], '0-' .. ARGV[1], '+', 'COUNT', ARGV[2]),
        redis.call('XLEN', KEYS[1])}
"""

# The owner's end, if the stream is still its own: 1 written, 0 not ours any more.
END: Final = """
-- KEYS: log meta subs; ARGV: token, end entry sequence, reason, keep ms, publish command
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1]
   or redis.call('HEXISTS', KEYS[2], 'ended') == 1 then
  return 0
end
redis.call('XADD', KEYS[1], '0-' .. ARGV[2], 'e', ARGV[3])
redis.call('HSET', KEYS[2], 'ended', ARGV[3])
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[4]) end
local channel = string.sub(KEYS[1], 1, -4) .. 'live'
redis.call(ARGV[5], channel, 'e' .. (ARGV[2] - 1) .. ':' .. ARGV[3])
return 1
"""

# Another process's subscribers came (B) or went (I): tell the owner on the first and
# the last.
JOIN: Final = """
-- KEYS: meta subs; ARGV: token, stream id, control channel prefix
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if redis.call('SADD', KEYS[2], ARGV[1]) == 1 then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  if redis.call('SCARD', KEYS[2]) == 1 and redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
    redis.call('PUBLISH', ARGV[3] .. owner, 'B' .. ARGV[2])
  end
end
return 1
"""

LEAVE: Final = """
-- KEYS: meta subs; ARGV: token, stream id, control channel prefix
if redis.call('SREM', KEYS[2], ARGV[1]) == 1 and redis.call('SCARD', KEYS[2]) == 0 then
  local owner = redis.call('HGET', KEYS[1], 'owner')
  if owner and redis.call('HEXISTS', KEYS[1], 'ended') == 0 then
    redis.call('PUBLISH', ARGV[3] .. owner, 'I' .. ARGV[2])
  end
end
return 1
"""

# What burying a dead process does to one of the streams it served: the same as LEAVE.
DROP_PRESENCE: Final = LEAVE

# 0: no such stream; 1: its owner is asked to stop; 2: it has ended already.
CANCEL: Final = """
-- KEYS: meta; ARGV: stream id, control channel prefix
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return 0 end
if redis.call('HEXISTS', KEYS[1], 'ended') == 1 then return 2 end
redis.call('HSET', KEYS[1], 'cancel', '1')
redis.call('PUBLISH', ARGV[2] .. owner, 'C' .. ARGV[1])
return 1
"""

# A dead (or retiring) process's running stream ends `lost`, and its followers are told.
# 1: ended now; 0: it was not running under that owner.
BURY_STREAM: Final = """
-- KEYS: log meta subs; ARGV: the dead token, keep ms, publish command
if redis.call('HGET', KEYS[2], 'owner') ~= ARGV[1]
   or redis.call('HEXISTS', KEYS[2], 'ended') == 1 then
  return 0
end
local index = redis.call('XLEN', KEYS[1])
redis.call('XADD', KEYS[1], '0-' .. (index + 1), 'e', 'lost')
redis.call('HSET', KEYS[2], 'ended', 'lost')
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], ARGV[2]) end
local channel = string.sub(KEYS[1], 1, -4) .. 'live'
redis.call(ARGV[3], channel, 'e' .. index .. ':lost')
return 1
"""

# The lease thread's beat on this process's own keys: 1 if the lease was still held.
BEAT: Final = """
-- KEYS: lease owns subs; ARGV: lease ms, registry ms
local held = redis.call('SET', KEYS[1], '1', 'PX', ARGV[1], 'GET')
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[3], ARGV[2])
return held and 1 or 0
"""

# A finished stream this process evicts to stay under --resume-max-mb.
FORGET: Final = """
-- KEYS: log meta subs
if redis.call('HEXISTS', KEYS[2], 'ended') == 1 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
end
return 1
"""
