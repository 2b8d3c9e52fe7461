"""Stream and event ids (ids.py): made unguessable, checked and parsed in one place."""

from __future__ import annotations

import pytest

from sseserver.ids import event_id, is_stream_id, new_stream_id, parse_event_id


def test_event_ids_round_trip_and_refuse_garbage() -> None:
    stream_id = new_stream_id()
    assert ":" not in stream_id
    assert parse_event_id(event_id(stream_id, 42)) == (stream_id, 42)
    for bad in ("", "x", ":1", "a:", "a:b", "a:-1", "a b:1", "a:1e2", "a:" + "9" * 10,
                "a:١٢", "x" * 65 + ":1"):
        assert parse_event_id(bad) is None, bad


def test_new_stream_ids_are_valid_and_distinct() -> None:
    made = {new_stream_id() for _ in range(1000)}
    assert len(made) == 1000
    assert all(is_stream_id(stream_id) for stream_id in made)


@pytest.mark.parametrize("value", ["", "a b", "a:b", "a/b", "a\nb", "x" * 65, "é\x00"])
def test_what_no_stream_id_looks_like(value: str) -> None:
    assert not is_stream_id(value)
