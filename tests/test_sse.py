"""`sseserver.sse`: exact wire bytes, field validation, and a browser-faithful round trip.

Exact-bytes tests pin the format; the properties run every frame through the
WHATWG-conformant `tests.support.sse_parser`, so "the browser receives what we sent" is checked
for any text, any event mix and any TCP chunking.
"""

from __future__ import annotations

import json
import re
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sseserver.errors import FieldError
from sseserver.sse import (
    PING,
    StreamFrames,
    encode_event,
    encode_retry,
    to_json,
)
from tests.support.sse_parser import SSEEvent, SSEParser, parse_all

# --- exact bytes ----------------------------------------------------------------------


def test_encode_event_exact_bytes() -> None:
    """Field order id, event, data; one space after each colon; a blank line ends it."""
    assert encode_event("message", '"hi"', "s:1") == b'id: s:1\nevent: message\ndata: "hi"\n\n'


def test_encode_event_non_ascii_is_raw_utf8() -> None:
    """Non-ASCII payload travels as UTF-8 bytes, not \\u escapes."""
    frame = encode_event("delta", to_json({"t": "\u00e9\u4e2d\U0001f600"}), "7")
    assert frame == 'id: 7\nevent: delta\ndata: {"t":"\u00e9\u4e2d\U0001f600"}\n\n'.encode()


def test_encode_event_lone_surrogate_falls_back_to_escapes() -> None:
    """A lone surrogate has no UTF-8 form, so the payload is re-encoded with escapes."""
    frame = encode_event("message", to_json("a\ud800\u00e9"), "1")
    assert frame == b'id: 1\nevent: message\ndata: "a\\ud800\\u00e9"\n\n'


def test_encode_retry_exact_bytes() -> None:
    """`retry: <ms>` then a blank line, decimal ASCII digits."""
    assert encode_retry(3000) == b"retry: 3000\n\n"
    assert encode_retry(0) == b"retry: 0\n\n"


def test_ping_is_a_comment() -> None:
    """The keep-alive is a comment frame: no event reaches the page."""
    assert PING == b": ping\n\n"
    parser = SSEParser()
    assert parser.feed(PING) == []
    assert parser.comments == [" ping"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("hi", '"hi"'),
        ({"a": [1, None, True]}, '{"a":[1,null,true]}'),
        ("\u00e9\U0001f600", '"\u00e9\U0001f600"'),
        ("a\nb\r\nc\rd\0", '"a\\nb\\r\\nc\\rd\\u0000"'),
        ("data: x\n\nid: 9", '"data: x\\n\\nid: 9"'),
    ],
)
def test_to_json_exact(value: object, expected: str) -> None:
    """Compact separators, UTF-8 kept, every control character escaped."""
    assert to_json(value) == expected


# --- validation -----------------------------------------------------------------------

_BAD_FIELD_VALUES = ["a\rb", "a\nb", "a\r\nb", "a\0b", "\n", "\r", "\0"]


@pytest.mark.parametrize("bad", _BAD_FIELD_VALUES)
def test_event_name_rejects_cr_lf_nul(bad: str) -> None:
    """A line break would end the `event` field early and inject new fields."""
    with pytest.raises(FieldError):
        encode_event(bad, "1", "1")


@pytest.mark.parametrize("bad", _BAD_FIELD_VALUES)
def test_event_id_rejects_cr_lf_nul(bad: str) -> None:
    """A line break would split `id`; a NUL makes the browser ignore it."""
    with pytest.raises(FieldError):
        encode_event("message", "1", bad)


@pytest.mark.parametrize("bad", ["1\n2", "1\r2", '"a"\r\n'])
def test_data_rejects_raw_line_breaks(bad: str) -> None:
    """`data_json` must be single-line JSON, or the frame would split."""
    with pytest.raises(FieldError):
        encode_event("message", bad, "1")


@pytest.mark.parametrize("bad", [-1, True, False, 1.5, 3000.0, "3000", None])
def test_encode_retry_rejects_non_digit_values(bad: Any) -> None:
    """Only a non-negative int prints as ASCII digits; bool is an int but not a delay."""
    with pytest.raises(FieldError):
        encode_retry(bad)


# --- properties through the WHATWG parser ---------------------------------------------

# Every code point category, surrogates (Cs) included, plus the characters that matter
# to the wire format, so line breaks and field look-alikes show up often.
_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec=None, categories=None),
        st.characters(categories=["Cs"]),
        st.sampled_from(["\n", "\r", "\0", ":", " ", "\ufeff", "\U0001f600", "\u4e2d"]),
    ),
    max_size=40,
) | st.sampled_from(["", "\r\n", "data: x\n\nid: 9\n\n", "\ud83d\ude00", "\udc00\ud800"])

_IDS = st.text(
    alphabet=st.characters(exclude_characters="\r\n\0", exclude_categories=["Cs"]), max_size=10
)
_SURROGATE_PAIR = re.compile("[\ud800-\udbff][\udc00-\udfff]")


def _utf16(text: str) -> bytes:
    """The string as JavaScript sees it: a sequence of UTF-16 code units."""
    return text.encode("utf-16-le", "surrogatepass")


def _assert_same_text(received: str, sent: str) -> None:
    """`received` is `sent` as JavaScript's JSON.parse would produce it.

    Python's json.loads joins an escaped high+low surrogate pair into one astral code
    point; in JavaScript both are the same two UTF-16 code units, so compare those, and
    demand exact Python equality whenever no such pair is present.
    """
    assert _utf16(received) == _utf16(sent)
    if not _SURROGATE_PAIR.search(sent):
        assert received == sent


@settings(max_examples=300, deadline=None, database=None)
@given(text=_TEXT)
def test_any_text_round_trips(text: str) -> None:
    """Whatever the text, the browser sees exactly one "message" event carrying it."""
    frame = encode_event("message", to_json(text), "s:1")
    decoded = frame.decode("utf-8")  # strict: raises on anything but valid UTF-8
    assert not decoded.startswith("\ufeff")
    parser = SSEParser()
    events = parser.feed(frame)
    assert len(events) == 1
    (event,) = events
    assert event.type == "message"
    assert event.last_event_id == "s:1"
    _assert_same_text(json.loads(event.data), text)
    assert parser.last_event_id == "s:1"
    assert parser.comments == []


@settings(max_examples=300, deadline=None, database=None)
@given(texts=st.lists(_TEXT, min_size=1, max_size=4))
def test_stream_frames_are_encode_event_with_numbered_ids(texts: list[str]) -> None:
    """The generation's framer: the same bytes as encode_event, ids `<stream>:0`, ..."""
    frames = StreamFrames("7xQ2mV0b9tKcR1aZ")
    got = [frames.event("meta", {"n": 1})] + [frames.message(text) for text in texts]
    expected = [encode_event("meta", to_json({"n": 1}), "7xQ2mV0b9tKcR1aZ:0")] + [
        encode_event("message", to_json(text), f"7xQ2mV0b9tKcR1aZ:{index}")
        for index, text in enumerate(texts, start=1)
    ]
    assert got == expected
    assert frames.count == len(texts) + 1


@pytest.mark.parametrize("bad", ["a\nb", "a\rb", "a\0b"])
def test_stream_frames_refuse_bad_stream_ids_and_names(bad: str) -> None:
    with pytest.raises(FieldError):
        StreamFrames(bad)
    frames = StreamFrames("s")
    with pytest.raises(FieldError):
        frames.event(bad, 1)
    assert frames.count == 0  # a refused event takes no index


@settings(max_examples=150, deadline=None, database=None)
@given(event=_IDS.filter(bool), event_id=_IDS)
def test_any_valid_name_and_id_round_trip(event: str, event_id: str) -> None:
    """Any event name and id without CR/LF/NUL reach the browser unchanged."""
    (parsed,) = parse_all(encode_event(event, "0", event_id))
    assert parsed == SSEEvent(type=event, data="0", last_event_id=event_id)


@settings(max_examples=100, deadline=None, database=None)
@given(milliseconds=st.integers(min_value=0, max_value=10**12))
def test_any_retry_is_taken_by_the_browser(milliseconds: int) -> None:
    """Every accepted retry value is one the parser accepts, with the same number."""
    parser = SSEParser()
    assert parser.feed(encode_retry(milliseconds)) == []
    assert parser.retry == milliseconds


_FRAME = st.one_of(
    st.tuples(st.just("event"), _TEXT, _IDS),
    st.tuples(st.just("ping"), st.just(""), st.just("")),
    st.tuples(st.just("retry"), st.integers(min_value=0, max_value=10**6).map(str), st.just("")),
)


@settings(max_examples=150, deadline=None, database=None)
@given(
    frames=st.lists(_FRAME, max_size=20),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
)
def test_concatenated_frames_survive_any_chunking(
    frames: list[tuple[str, str, str]], cuts: list[int]
) -> None:
    """A stream of events, pings and retries split at arbitrary byte offsets (as TCP
    may) yields every event exactly once, in order, plus every ping and retry."""
    stream = bytearray()
    sent: list[tuple[str, str]] = []
    pings = 0
    last_retry: int | None = None
    for kind, payload, event_id in frames:
        if kind == "event":
            stream += encode_event("delta", to_json(payload), event_id)
            sent.append((payload, event_id))
        elif kind == "ping":
            stream += PING
            pings += 1
        else:
            last_retry = int(payload)
            stream += encode_retry(last_retry)
    data = bytes(stream)
    offsets = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *offsets, len(data)]

    parser = SSEParser()
    events: list[SSEEvent] = []
    for start, end in pairwise(bounds):
        events.extend(parser.feed(data[start:end]))

    assert len(events) == len(sent)
    for event, (payload, event_id) in zip(events, sent, strict=True):
        assert event.type == "delta"
        assert event.last_event_id == event_id
        _assert_same_text(json.loads(event.data), payload)
    assert parser.comments == [" ping"] * pings
    assert parser.retry == last_retry
