"""Commands in Redis's protocol (RESP), packed by hand: the log writer's, and the live
readers' on their own connections (live.py).

redis-py packs each command through its encoder, with a generator per argument; for the
log's writer, which sends a command per frame, that was the largest cost of the process
under a flat-out load (docs/performance.md, "Redis"). The writer's arguments are only
bytes, str and int, so `command` packs each with one format; and a frame's `XADD`, the
command nearly every batch is made of, is its stream's fixed head (`xadd_head`, built once
per stream) and one format for the entry's id and bytes. The bytes are what redis-py sends.
"""

from __future__ import annotations

from typing import Final

Argument = bytes | str | int

_NOMKSTREAM: Final = b"$10\r\nNOMKSTREAM\r\n"


def command(*arguments: Argument) -> bytes:
    """One command as a RESP array of bulk strings: str as UTF-8, int in decimal."""
    out = [b"*%d\r\n" % len(arguments)]
    for argument in arguments:
        if isinstance(argument, bytes):
            value = argument
        elif isinstance(argument, str):
            value = argument.encode()
        elif isinstance(argument, int) and not isinstance(argument, bool):
            value = b"%d" % argument
        else:
            raise TypeError(f"cannot send {type(argument).__name__} to Redis")
        out.append(b"$%d\r\n%b\r\n" % (len(value), value))
    return b"".join(out)


def xadd_head(key: str) -> bytes:
    """`XADD key NOMKSTREAM`, the first three of the six arguments `xadd` completes."""
    name = key.encode()
    return b"*6\r\n$4\r\nXADD\r\n$%d\r\n%b\r\n%b" % (len(name), name, _NOMKSTREAM)


def xadd(head: bytes, entry_id: int, frame: bytes) -> bytes:
    """`XADD key NOMKSTREAM 0-<entry_id> f <frame>`, from its stream's `xadd_head`."""
    number = b"0-%d" % entry_id
    return b"%b$%d\r\n%b\r\n$1\r\nf\r\n$%d\r\n%b\r\n" % (
        head, len(number), number, len(frame), frame)
