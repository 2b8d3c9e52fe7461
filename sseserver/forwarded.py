"""Who the client is: the TCP peer, or, when the peer is a proxy named in
`--forwarded-allow-ips`, the address and scheme that proxy forwarded (docs/operations.md,
"Behind a proxy"). The per-client limit, the access log and the access cookie's `Secure`
flag ask here; no metric label holds an address.

What is read, and why only that:

- `X-Forwarded-For`, from the right. Each proxy appends the address it got the request
  from, so entries written by trusted proxies are at the right end: the first entry from
  the right that is not a trusted proxy is the client. Whatever lies left of it was
  written by the client itself or by proxies nobody vouches for, and is never read.
- `X-Forwarded-Proto`, its last entry: the word of the nearest proxy, the one trusted.
- Not `Forwarded` (RFC 7239): nginx passes a client's own `Forwarded` through untouched
  while it rewrites `X-Forwarded-For`, so reading it would let any client name itself.

From a peer that is not trusted, none of these headers count: a client talking to the
process directly gains nothing by sending them.

Resolved once per request, by the app's one middleware (`resolve_client`), and kept on
the request only when a trusted proxy forwarded something. An SSE request lives as long as
its stream, so a request from anyone else, or any request when nothing is trusted (the
default), holds nothing more than it would without this module.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from aiohttp import hdrs, web

from .app_keys import SETTINGS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Client:
    """The client as a trusted proxy saw it."""

    address: str
    secure: bool


CLIENT: Final = web.RequestKey("client", Client)


def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it: `203.0.113.7`, `2001:db8::1`, also with a port
    (`203.0.113.7:4711`, `[2001:db8::1]:4711`); IPv4 inside IPv6 (`::ffff:203.0.113.7`,
    a dual-stack socket's view) as IPv4, so one client has one address; an IPv6 zone
    (`fe80::1%eth0`) is dropped."""
    text = text.strip()
    if text.startswith("["):
        text, bracket, _ = text[1:].partition("]")
        if not bracket:
            return None
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id is not None:
            # A zone names an interface of the sender's host, means nothing here, and
            # may hold any text (spaces and `key=value` included): it is dropped.
            return ipaddress.IPv6Address(int(address))
    return address


def _trusted(address: IPAddress, networks: Iterable[IPNetwork]) -> bool:
    return any(address in network for network in networks)


def forwarded_for(values: Sequence[str], trusted: Sequence[IPNetwork]) -> IPAddress | None:
    """The client named by X-Forwarded-For (every field line, in order), read from the
    right past trusted proxies; the left-most one when all are trusted. An entry that is
    not an address ends the reading at the proxy that passed it on (None: no entry)."""
    nearest: IPAddress | None = None
    for entry in reversed(",".join(values).split(",")):
        address = parse_address(entry)
        if address is None:
            break
        if not _trusted(address, trusted):
            return address
        nearest = address
    return nearest


def resolve_client(request: web.Request) -> None:
    """A check (middleware.json_errors): when the peer is a trusted proxy that forwarded
    a client address or scheme, keep them on the request."""
    trusted = request.app[SETTINGS].forwarded_allow_ips
    if not trusted:
        return None
    peer = parse_address(peer_address(request))
    if peer is None or not _trusted(peer, trusted):
        return None
    headers = request.headers
    chain = headers.getall(hdrs.X_FORWARDED_FOR, ())
    protos = headers.getall(hdrs.X_FORWARDED_PROTO, ())
    if not chain and not protos:
        return None
    address = forwarded_for(chain, trusted) or peer
    proto = ",".join(protos).rpartition(",")[2].strip().lower()
    secure = proto == "https" if proto in ("http", "https") else request.secure
    request[CLIENT] = Client(str(address), secure)
    return None


def client_address(request: web.BaseRequest) -> str:
    """The client's address: forwarded by a trusted proxy, else the TCP peer."""
    client: Client | None = request.get(CLIENT)
    if client is not None:
        return client.address
    return peer_address(request)


def peer_address(request: web.BaseRequest) -> str:
    """The TCP peer's address ("" for a Unix socket): what aiohttp's `request.remote`
    says, read from the connection without that property's per-request cache, which an
    open stream would hold for its whole life."""
    peername = request.protocol.peername
    if isinstance(peername, (list, tuple)):
        return str(peername[0])
    return str(peername) if peername else ""


def client_secure(request: web.BaseRequest) -> bool:
    """Whether the client used HTTPS: as a trusted proxy said, else this connection."""
    client: Client | None = request.get(CLIENT)
    return client.secure if client is not None else request.secure
