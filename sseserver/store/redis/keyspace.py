"""Every key and channel name the Redis store uses, built here and nowhere else.

The rule, for Redis Cluster (docs/architecture.md, "The stores"): **keys that one script or
one atomic step touches together share one `{hash tag}`**, so they sit in one slot, and
every script names every key it touches in KEYS (a cluster refuses any other). A new kind
of key gets a tag saying what it belongs to: a stream (`{<stream id>}`), a process
(`{proc:<token>}`), a name (`{<name>}`), a limit's key (`{<key>}`), a user's budget
(`{user:<id>}`). Keys of different tags are only ever touched by separate commands, never
by one script.

    <p>{<id>}:log  :meta  :subs   one stream's keys (scripts.py says what each holds)
    <p>{<id>}:live                the stream's channel (sharded pub/sub on a cluster)
    <p>{proc:<token>}             a process's lease   :owns :subs  what it generates, serves
    <p>procs                      every live process's token
    <p>dead                       sorted set: tokens of processes buried, by when
    <p>ctl:<token>                channel to an owner (plain pub/sub, rare messages)
    <p>name:{<name>}              the stream a name points at (names.py)
    <p>slots:{<key>}              a limit's generations per process (quotas.py)
    <p>budget:{user:<id>}:<w>     a user's spending in budget window w (quotas.py)

The prefix must hold no brace, or it would become the tag.
"""

from __future__ import annotations

from .resp import xadd_head


def check_prefix(prefix: str) -> str:
    if "{" in prefix or "}" in prefix:
        raise ValueError(f"a Redis key prefix may not hold braces: {prefix!r}")
    return prefix


class StreamKeys:
    """The names of one stream's keys, built once per stream."""

    __slots__ = ("append_head", "channel", "log", "meta", "subs")

    def __init__(self, prefix: str, stream_id: str) -> None:
        base = f"{prefix}{{{stream_id}}}:"
        self.log = base + "log"
        self.meta = base + "meta"
        self.subs = base + "subs"
        self.channel = base + "live"
        self.append_head = xadd_head(self.log)  # a frame's XADD, packed (resp.py)


class ProcessKeys:
    """The names of one process's keys, and its control channel."""

    __slots__ = ("control", "lease", "owns", "subs")

    def __init__(self, prefix: str, token: str) -> None:
        self.lease = f"{prefix}{{proc:{token}}}"
        self.owns = self.lease + ":owns"
        self.subs = self.lease + ":subs"
        self.control = control_channel(prefix, token)


def control_channel(prefix: str, token: str) -> str:
    return f"{prefix}ctl:{token}"


def registry(prefix: str) -> str:
    return f"{prefix}procs"


def name_key(prefix: str, name: str) -> str:
    return f"{prefix}name:{{{name}}}"


def dead_processes(prefix: str) -> str:
    return f"{prefix}dead"


def slots_key(prefix: str, key: str) -> str:
    return f"{prefix}slots:{{{key}}}"


def budget_key(prefix: str, user: str, window: int) -> str:
    return f"{prefix}budget:{{user:{user}}}:{window}"
