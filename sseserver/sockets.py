"""TCP options on an SSE connection, so a client that vanished without a FIN or RST (a
laptop closed, a phone off the network, a NAT that forgot the flow) is found
(docs/operations.md, "Half-open connections").

The send deadline in serving.py cannot find such a client: writes to it do not block
until the kernel's send buffer (hundreds of KiB) is full, and heartbeats are 8 bytes. Linux
itself would give up only after `tcp_retries2` retransmissions, about 15 minutes. So:

- `TCP_USER_TIMEOUT` = `--send-timeout`: data we wrote that stays unacknowledged that long
  makes the kernel drop the connection (ETIMEDOUT). Heartbeats guarantee there is such data
  within `--heartbeat` seconds of silence.
- Keepalive probes (idle and interval `--send-timeout` / 3, at least 1 s) cover a
  connection with nothing unacknowledged; with `TCP_USER_TIMEOUT` set, Linux drops it once
  the probes have gone unanswered for `--send-timeout` seconds.

A client that vanished is therefore dropped within `--heartbeat` + `--send-timeout` seconds
(plus under a second of TCP timer granularity); handler cancellation then makes it leave its
stream, and the upstream is cancelled by the resume rules. Both options are Linux ones;
elsewhere only what the platform has is set.
"""

from __future__ import annotations

import logging
import math
import socket

from aiohttp import web

log = logging.getLogger("sseserver.sockets")

_KEEPALIVE_PROBES = 3


def keepalive_settings(send_timeout: float) -> dict[str, int]:
    """The TCP options for `--send-timeout`, by name: USER_TIMEOUT in ms, others in s."""
    step = max(1, math.ceil(send_timeout / _KEEPALIVE_PROBES))
    return {
        "TCP_USER_TIMEOUT": max(1, round(send_timeout * 1000)),
        "TCP_KEEPIDLE": step,
        "TCP_KEEPINTVL": step,
        "TCP_KEEPCNT": _KEEPALIVE_PROBES,
    }


def watch_for_half_open(request: web.BaseRequest, send_timeout: float) -> None:
    """Set keepalive and TCP_USER_TIMEOUT on the request's socket (TCP only)."""
    transport = request.transport
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return  # a Unix socket or a test transport: nothing can be half-open there
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        for name, value in keepalive_settings(send_timeout).items():
            option = getattr(socket, name, None)
            if option is not None:
                sock.setsockopt(socket.IPPROTO_TCP, option, value)
    except OSError as exc:  # the connection may already be gone; nothing to watch then
        log.debug("cannot set TCP keepalive options: %s", exc)
