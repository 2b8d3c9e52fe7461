"""Admission by event-loop lag (overload.py): sustained lag sheds, one pause does not."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Histogram

from sseserver.overload import LoopLag


def _lag(limit_ms: int) -> LoopLag:
    return LoopLag(limit_ms, Histogram("lag", "lag", registry=CollectorRegistry()))


def _feed(lag: LoopLag, samples_ms: list[float]) -> None:
    for sample in samples_ms:
        lag.record(sample / 1000)


def test_a_loop_behind_most_of_the_time_is_overloaded() -> None:
    lag = _lag(50)
    _feed(lag, [80, 20, 90, 120, 60, 70, 10, 200, 55, 75])
    assert lag.overloaded


def test_one_long_pause_is_not_overload() -> None:
    lag = _lag(50)
    _feed(lag, [2, 1, 3, 250, 2, 1, 4, 2, 1, 3])
    assert not lag.overloaded


def test_no_verdict_before_a_full_window_and_none_when_off() -> None:
    lag = _lag(50)
    _feed(lag, [500] * 9)
    assert not lag.overloaded
    off = _lag(0)
    _feed(off, [500] * 10)
    assert not off.overloaded
