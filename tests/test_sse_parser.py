"""The test parser against the HTML Standard's own server-sent-events examples and rules.

Every other SSE test trusts `tests.support.sse_parser`, so it is pinned here to the spec: the
worked examples of "Parsing an event stream" / "Interpreting an event stream", and
invariance of the result under any split of the byte stream into chunks.
"""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.sse_parser import SSEEvent, SSEParser, parse_all


def msg(data: str, last_event_id: str = "", type_: str = "message") -> SSEEvent:
    """Shorthand for an expected event."""
    return SSEEvent(type=type_, data=data, last_event_id=last_event_id)


def feed_chunks(chunks: list[bytes]) -> tuple[SSEParser, list[SSEEvent]]:
    """Feed `chunks` one by one to a fresh parser, collecting every event."""
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events.extend(parser.feed(chunk))
    return parser, events


# --- the spec's worked examples -------------------------------------------------------


def test_spec_stock_example() -> None:
    """Intro: multi-line data joins with LF; 'YHOO', '+2', '10' is one event."""
    assert parse_all(b"data: YHOO\ndata: +2\ndata: 10\n\n") == [msg("YHOO\n+2\n10")]


def test_spec_three_messages_example() -> None:
    """Intro: three messages, the second spread over two data lines."""
    stream = (
        b"data: This is the first message.\n\n"
        b"data: This is the second message, it\n"
        b"data: has two lines.\n\n"
        b"data: This is the third message.\n\n"
    )
    assert parse_all(stream) == [
        msg("This is the first message."),
        msg("This is the second message, it\nhas two lines."),
        msg("This is the third message."),
    ]


def test_spec_event_types_example() -> None:
    """Intro: the `event` field names the type; it resets after each dispatch."""
    stream = (
        b"event: add\ndata: 73857293\n\n"
        b"event: remove\ndata: 2153\n\n"
        b"event: add\ndata: 113411\n\n"
        b"data: plain\n\n"
    )
    assert parse_all(stream) == [
        msg("73857293", type_="add"),
        msg("2153", type_="remove"),
        msg("113411", type_="add"),
        msg("plain"),
    ]


def test_spec_comment_first_event_id_example() -> None:
    """9.2.6 example: comment fires nothing; `id` with no value resets the last ID;
    only one leading space is stripped from a value."""
    stream = (
        b": test stream\n\n"
        b"data: first event\nid: 1\n\n"
        b"data:second event\nid\n\n"
        b"data:  third event\n\n"
    )
    parser = SSEParser()
    assert parser.feed(stream) == [
        msg("first event", "1"),
        msg("second event", ""),
        msg(" third event", ""),
    ]
    assert parser.comments == [" test stream"]
    assert parser.last_event_id == ""


def test_spec_last_block_needs_blank_line() -> None:
    """9.2.6: the end of the stream is not enough to dispatch the last event."""
    assert parse_all(b"data: first event\n\ndata:  third event") == [msg("first event")]
    assert parse_all(b"data: first event\n\ndata:  third event\n") == [msg("first event")]


def test_spec_two_identical_events() -> None:
    """9.2.6: `data:test` and `data: test` are the same, the space after ':' is dropped."""
    assert parse_all(b"data:test\n\ndata: test\n\n") == [msg("test"), msg("test")]


def test_spec_empty_and_newline_data_example() -> None:
    """9.2.6: `data` alone gives "", two of them give "\\n"; an unterminated block is lost."""
    assert parse_all(b"data\n\ndata\ndata\n\ndata:") == [msg(""), msg("\n")]


# --- line endings, BOM, decoding ------------------------------------------------------


@pytest.mark.parametrize(
    "stream",
    [
        b"id: 7\revent: e\rdata: a\rdata: b\r\r",
        b"id: 7\r\nevent: e\r\ndata: a\r\ndata: b\r\n\r\n",
        b"id: 7\nevent: e\ndata: a\ndata: b\n\n",
        b"id: 7\r\nevent: e\rdata: a\ndata: b\r\n\r",
    ],
    ids=["cr", "crlf", "lf", "mixed"],
)
def test_line_endings_cr_crlf_lf(stream: bytes) -> None:
    """end-of-line = CRLF / CR / LF; CRLF counts once, so it never makes a blank line."""
    assert parse_all(stream) == [msg("a\nb", "7", "e")]


def test_cr_then_lf_in_next_chunk_is_one_line_end() -> None:
    """A CR ending one chunk and an LF starting the next are one line end, not two."""
    _, events = feed_chunks([b"data: x\r", b"\ndata: y\r", b"\n\r", b"\n"])
    assert events == [msg("x\ny")]


def test_cr_then_split_character_then_lf() -> None:
    """A chunk that decodes to nothing (half a character) keeps the pending CR."""
    _, events = feed_chunks([b"data: x\r", b"\ndata: \xc3", b"\xa9\r", b"", b"\n\r\n"])
    assert events == [msg("x\n\u00e9")]


def test_lf_cr_is_two_line_ends() -> None:
    """LF followed by CR is two line ends: a blank line that dispatches."""
    assert parse_all(b"data: x\n\rdata: y\n\n") == [msg("x"), msg("y")]


def test_leading_bom_stripped_once() -> None:
    """Only one leading BOM is dropped; a second one becomes part of the field name."""
    assert parse_all(b"\xef\xbb\xbfdata: a\n\n") == [msg("a")]
    assert parse_all(b"\xef\xbb\xbf\xef\xbb\xbfdata: a\n\ndata: b\n\n") == [msg("b")]


def test_bom_split_across_chunks() -> None:
    """The BOM is recognised after decoding, so splitting its bytes does not matter."""
    _, events = feed_chunks([b"\xef", b"\xbb", b"\xbf", b"data: a\n\n"])
    assert events == [msg("a")]


def test_bom_only_at_stream_start() -> None:
    """A BOM later in the stream is ordinary text."""
    assert parse_all(b"data: \xef\xbb\xbfa\n\n") == [msg("\ufeffa")]


def test_invalid_utf8_becomes_replacement_character() -> None:
    """UTF-8 decode with replacement, maximal subparts as the Encoding Standard says."""
    stream = b"data: \xff|\xed\xa0\x80|\xf0\x9f|\xe2\x82\xac\n\n"
    assert parse_all(stream) == [msg("\ufffd|\ufffd\ufffd\ufffd|\ufffd|\u20ac")]


def test_multibyte_character_split_across_chunks() -> None:
    """A 4-byte emoji fed one byte at a time arrives as one character."""
    stream = "data: \U0001f600 \u4e2d\n\n".encode()
    _, events = feed_chunks([stream[i : i + 1] for i in range(len(stream))])
    assert events == [msg("\U0001f600 \u4e2d")]


# --- fields ---------------------------------------------------------------------------


def test_id_persists_across_events() -> None:
    """The last event ID buffer is not reset on dispatch; each event carries it."""
    parser = SSEParser()
    events = parser.feed(b"id: 1\ndata: a\n\ndata: b\n\nid: 2\ndata: c\n\ndata: d\n\n")
    assert events == [msg("a", "1"), msg("b", "1"), msg("c", "2"), msg("d", "2")]
    assert parser.last_event_id == "2"


def test_id_with_nul_is_ignored() -> None:
    """An `id` value containing U+0000 leaves the last event ID buffer unchanged."""
    parser = SSEParser()
    events = parser.feed(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert events == [msg("a", "1"), msg("b", "1")]
    assert parser.last_event_id == "1"


def test_nul_allowed_in_data() -> None:
    """NUL is only special in `id`."""
    assert parse_all(b"data: a\x00b\n\n") == [msg("a\x00b")]


def test_id_set_on_blank_line_without_data() -> None:
    """Dispatch sets the last event ID string even when no event fires."""
    parser = SSEParser()
    assert parser.feed(b"id: 5\n\n") == []
    assert parser.last_event_id == "5"
    assert parser.feed(b"data: x\n\n") == [msg("x", "5")]


def test_last_event_id_updates_only_on_dispatch() -> None:
    """`last_event_id` is what a reconnecting browser sends: not an unfinished block's id."""
    parser = SSEParser()
    parser.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b\n")
    assert parser.last_event_id == "1"


def test_id_keeps_value_after_one_space() -> None:
    """Only one space is stripped, and colons after the first are part of the value."""
    assert parse_all(b"id:  s:1:2\ndata: a\n\n") == [msg("a", " s:1:2")]


def test_event_type_without_data_does_not_leak() -> None:
    """A block with only `event` fires nothing and its type does not carry over."""
    assert parse_all(b"event: x\n\ndata: a\n\n") == [msg("a")]


def test_empty_event_field_means_message() -> None:
    """An empty event type buffer dispatches as "message"."""
    assert parse_all(b"event:\ndata: a\n\n") == [msg("a")]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (b"retry: 3000", 3000),
        (b"retry:0", 0),
        (b"retry: 03000", 3000),
        (b"retry: 99999999999999999999", 99999999999999999999),
        (b"retry: -1", None),
        (b"retry: +5", None),
        (b"retry: 1.5", None),
        (b"retry: 10ms", None),
        (b"retry:  10", None),
        (b"retry: 10 ", None),
        (b"retry: \xd9\xa3", None),  # ARABIC-INDIC DIGIT THREE: a digit, not ASCII
        (b"retry:", None),
        (b"retry", None),
        (b"Retry: 10", None),
    ],
)
def test_retry_only_ascii_digits(line: bytes, expected: int | None) -> None:
    """`retry` is taken only when its value is ASCII digits, in base ten."""
    parser = SSEParser()
    assert parser.feed(line + b"\n\n") == []
    assert parser.retry == expected


def test_invalid_retry_keeps_previous_value() -> None:
    """An ignored `retry` does not reset the reconnection time."""
    parser = SSEParser()
    parser.feed(b"retry: 100\n\nretry: x\n\n")
    assert parser.retry == 100


def test_retry_does_not_need_dispatch() -> None:
    """`retry` takes effect when its line is read, even in an unfinished block."""
    parser = SSEParser()
    parser.feed(b"retry: 7\ndata: a\n")
    assert parser.retry == 7


def test_unknown_fields_and_case_ignored() -> None:
    """Field names are case-sensitive; unknown ones are skipped."""
    stream = b"foo: bar\nData: no\nEVENT: no\nID: 9\ndata: yes\n\n"
    assert parse_all(stream) == [msg("yes")]


def test_field_without_colon_has_empty_value() -> None:
    """A line with no colon is a field name with the empty value."""
    assert parse_all(b"event\ndata\n\n") == [msg("")]


def test_comments_recorded() -> None:
    """Comment text after ':' is kept verbatim so tests can see keep-alive pings."""
    parser = SSEParser()
    assert parser.feed(b": ping\n\n:\n:x:y\n") == []
    assert parser.comments == [" ping", "", "x:y"]


def test_feed_returns_only_newly_completed_events() -> None:
    """Each feed returns the events its chunk finished, nothing earlier or later."""
    parser = SSEParser()
    assert parser.feed(b"data: a\n") == []
    assert parser.feed(b"\ndata: b\n\ndata: c") == [msg("a"), msg("b")]
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\n") == [msg("c")]
    assert parser.feed(b"") == []


# --- chunk-boundary invariance --------------------------------------------------------

_LINE_ENDS = st.sampled_from([b"\r", b"\n", b"\r\n"])
_NAMES = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b":", b"\xef\xbb\xbf", b"x"])
_VALUE_BYTES = st.sampled_from(
    [
        b"a", b":", b" ", b"7", b"\x00", b"\xc3\xa9", b"\xe4\xb8\xad", b"\xf0\x9f\x98\x80",
        b"\xff", b"\xf0\x9f", b"\xed\xa0\x80", b"\xef\xbb\xbf",
    ]
)  # fmt: skip
_LINES = st.tuples(
    _NAMES,
    st.sampled_from([b"", b":", b": "]),
    st.lists(st.one_of(_VALUE_BYTES, st.binary(max_size=2)), max_size=4).map(b"".join),
    _LINE_ENDS,
).map(b"".join)
# Mostly field lines and blank lines, so events really fire; now and then raw bytes.
_STREAMS = st.lists(st.one_of(_LINES, _LINE_ENDS, st.binary(max_size=3)), max_size=16).map(b"".join)


def _observe(parser: SSEParser, events: list[SSEEvent]) -> object:
    """Everything a test can observe about a parse, for comparison."""
    return events, parser.retry, parser.comments, parser.last_event_id


@settings(max_examples=250, deadline=None, database=None)
@given(stream=_STREAMS, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_chunking_does_not_change_result(stream: bytes, cuts: list[int]) -> None:
    """Any split of the bytes into chunks parses the same as feeding them whole: tried
    at random offsets, at every single offset, and one byte at a time."""
    whole = _observe(*feed_chunks([stream]))
    offsets = sorted({c % (len(stream) + 1) for c in cuts})
    bounds = [0, *offsets, len(stream)]
    chunks = [stream[a:b] for a, b in pairwise(bounds)]
    assert _observe(*feed_chunks(chunks)) == whole
    for i in range(1, len(stream)):
        assert _observe(*feed_chunks([stream[:i], stream[i:]])) == whole
    assert _observe(*feed_chunks([stream[i : i + 1] for i in range(len(stream))])) == whole
