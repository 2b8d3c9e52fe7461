"""resp.py packs the writer's commands into exactly the bytes redis-py would send."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from redis.asyncio.connection import Connection

from sseserver.store.redis.resp import Argument, command, xadd, xadd_head

arguments = st.one_of(st.binary(max_size=300), st.text(max_size=50),
                      st.integers(min_value=-(2**63), max_value=2**63))


def redis_py(*args: Argument) -> bytes:
    """What redis-py's own (pure Python) packer sends for a command."""
    return b"".join(Connection()._pack_command_python(*args))


@given(name=st.sampled_from(["XADD", "PEXPIRE", "HSET", "SPUBLISH", "EVALSHA"]),
       rest=st.lists(arguments, max_size=10))
def test_a_command_is_packed_as_redis_py_packs_it(name: str, rest: list[Argument]) -> None:
    assert command(name, *rest) == redis_py(name, *rest)


@given(key=st.text(min_size=1, max_size=80), entry=st.integers(min_value=1, max_value=10**9),
       frame=st.binary(max_size=2000))
def test_a_frames_xadd_is_the_command_it_stands_for(key: str, entry: int, frame: bytes) -> None:
    assert xadd(xadd_head(key), entry, frame) == redis_py(
        "XADD", key, "NOMKSTREAM", f"0-{entry}", "f", frame)


@pytest.mark.parametrize("value", [1.5, None, True, [b"x"]])
def test_what_redis_cannot_take_is_refused(value: object) -> None:
    with pytest.raises(TypeError, match="cannot send"):
        command("SET", "k", value)  # type: ignore[arg-type]
