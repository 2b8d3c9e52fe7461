"""`python -m sseserver.loadgen`: a load generator for SSE servers, shipped with the package
so a deployment can be measured the way `make bench` measures it.

Why our own: wrk and k6 count bytes or responses, not events, and cannot tell a lost or
repeated event from a delivered one. This one opens real TCP connections, speaks HTTP/1.1
itself, splits the body into SSE events, and checks every stream: ids `<stream>:<index>`
strictly consecutive (no gap, no duplicate, also across resumes with Last-Event-ID),
`done` received, and the expected number of events.

It must never be the bottleneck, so the per-event path is lean: one `asyncio.Protocol` per
connection, no task, future or timer per event, bodies split on blank lines in C
(`bytes.split`), and verification done inline in the data callback. It reports its own
CPU use over the measuring window: well under 100% of its core means it had idle time.

    runner.LoadGen: a worker per connection ─▶ request ─▶ protocol.Connection.data_received
        ─▶ protocol.ResponseParser (status, headers, chunked body) ─▶ decoder.SseDecoder
        ─▶ checks.StreamCheck.on_event (ids, counts, timings, drop after N) ─▶ stats.Stats
        ─▶ report.build_report / format_report ◀─ cli.main (the command line)

"Added latency" is defined for paced sources (`--pace-ms`, e.g. the demo provider's
`--demo-delay-ms` or the fake upstream's `--delay-ms`): for every pair of consecutive
`message` events of one stream (on the same connection), `max(0, gap - pace)`, where gap
is the difference of their arrival times at this process. A source that sleeps `pace`
before each token offers exactly that gap; anything above it was added on the way (event
loop lag in the server, a late timer, batching, the network, this process).

The public face, for programs that run a load in-process (the benchmarks, the tests):

- `Options`: what `python -m sseserver.loadgen --help` takes, as a frozen dataclass;
- `LoadGen(options).run()`: a coroutine returning the report as a dict (what `--json` prints);
- `format_report(report)`: the human-readable summary the command line prints;
- `main(argv)`: the command line itself, returning its exit code.

The parts (parser, decoder, checks) are importable from their modules for their own tests.
"""

from .cli import main
from .report import format_report
from .runner import LoadGen, Options

__all__ = ["LoadGen", "Options", "format_report", "main"]
