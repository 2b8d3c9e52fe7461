"""Ports for servers that cannot bind port 0 themselves (redis-server, nginx).

Picking a port by binding port 0, closing the socket and passing the number on races every
other process on the machine: the port is free for anyone between the close and the
server's bind. A `HeldPort` never lets go of it: its socket stays bound, with SO_REUSEADDR,
and never listens. On Linux that keeps the port from every bind to port 0 and every bind
without SO_REUSEADDR, while a server that binds with SO_REUSEADDR (redis-server and nginx
both do) can still bind and listen on it. A connection to it while no server listens is
refused, as to a closed port; the port stays held across a stop and a restart of the server.
"""

from __future__ import annotations

import socket
from types import TracebackType


class HeldPort:
    """A 127.0.0.1 port the kernel picked, held until `close()` (or the `with` block ends)."""

    def __init__(self) -> None:
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._socket.bind(("127.0.0.1", 0))
        except OSError:
            self._socket.close()
            raise
        self.port: int = self._socket.getsockname()[1]

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> HeldPort:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()
