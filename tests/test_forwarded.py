"""forwarded.py: which X-Forwarded-For entry is the client, and --forwarded-allow-ips.
What the server does with it, through nginx and straight, is tests/test_proxy_functional.py."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sseserver.config import load_settings
from sseserver.errors import ConfigError
from sseserver.forwarded import forwarded_for, parse_address

NGINX = (ipaddress.ip_network("127.0.0.1"),)
CHAIN = (ipaddress.ip_network("127.0.0.1"), ipaddress.ip_network("10.0.0.0/8"))


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("203.0.113.7:4711", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("2001:DB8:0::1", "2001:db8::1"),
        ("[2001:db8::1]:4711", "2001:db8::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("unknown", None),
        ("", None),
        ("203.0.113", None),
        ("_hidden", None),
        ("[2001:db8::1", None),
        ("203.0.113.7:4711:1", None),
    ],
)
def test_addresses_as_proxies_write_them(text: str, address: str | None) -> None:
    parsed = parse_address(text)
    assert (None if parsed is None else str(parsed)) == address


@pytest.mark.parametrize(
    ("values", "trusted", "client"),
    [
        (["203.0.113.7"], NGINX, "203.0.113.7"),
        # The client wrote the left entries itself: never read.
        (["198.51.100.1, 203.0.113.7"], NGINX, "203.0.113.7"),
        (["junk, 203.0.113.7"], NGINX, "203.0.113.7"),
        # Two trusted proxies: past both.
        (["198.51.100.1, 203.0.113.7, 10.0.0.2"], CHAIN, "203.0.113.7"),
        (["203.0.113.7, 10.0.0.2"], NGINX, "10.0.0.2"),  # 10.0.0.2 is not trusted here
        # Every entry trusted: the furthest one.
        (["10.0.0.3, 10.0.0.2"], CHAIN, "10.0.0.3"),
        # Several field lines are one list, in order.
        (["198.51.100.1", "203.0.113.7"], NGINX, "203.0.113.7"),
        # Not an address where a trusted proxy should have written one: stop at that proxy.
        (["203.0.113.7, junk"], NGINX, None),
        (["junk, 10.0.0.2"], CHAIN, "10.0.0.2"),
        ([""], NGINX, None),
        ([], NGINX, None),
    ],
)
def test_the_client_is_the_first_untrusted_entry_from_the_right(
    values: list[str], trusted: tuple[ipaddress.IPv4Network, ...], client: str | None
) -> None:
    found = forwarded_for(values, trusted)
    assert (None if found is None else str(found)) == client


@given(st.lists(st.text(max_size=60), max_size=4))
def test_any_header_gives_an_address_or_none(values: list[str]) -> None:
    found = forwarded_for(values, CHAIN)
    assert found is None or found in {parse_address(v) for v in ",".join(values).split(",")}


def test_forwarded_allow_ips_default_none_flag_and_variable() -> None:
    assert load_settings([], {}).forwarded_allow_ips == ()
    settings = load_settings(["--forwarded-allow-ips", "127.0.0.1, 10.0.0.0/8,::1,"], {})
    assert [str(n) for n in settings.forwarded_allow_ips] == [
        "127.0.0.1/32", "10.0.0.0/8", "::1/128"]
    env = {"SSESERVER_FORWARDED_ALLOW_IPS": "192.0.2.10"}
    assert [str(n) for n in load_settings([], env).forwarded_allow_ips] == ["192.0.2.10/32"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.1/8", "has host bits set"),
        ("nginx.internal", "does not appear to be an IPv4 or IPv6 network"),
        ("*", "0.0.0.0/0,::/0 trusts every peer"),
    ],
)
def test_bad_forwarded_allow_ips_name_the_option(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"--forwarded-allow-ips=.*") as raised:
        load_settings(["--forwarded-allow-ips", value], {})
    assert message in str(raised.value)
