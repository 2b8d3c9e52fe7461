"""Debian's nginx running deploy/nginx.conf in front of real sseserver processes, for the
tests that go through a real proxy: the file is used as written, with only its upstream
addresses, its two listen ports and its certificate paths swapped for the test's.

The certificate is self-signed, made by the test with Debian's openssl for 127.0.0.1.
Clients trust it by name (an SSL context with it as the only CA); Chromium by its public
key's hash (--ignore-certificate-errors-spki-list), which trusts this key and nothing else.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from .ports import HeldPort
from .processes import ROOT
from .system_tools import NGINX, OPENSSL, require


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path
    spki_sha256: str
    """base64 of the SHA-256 of the public key (DER), as Chromium's flag wants it."""

    def client_context(self) -> ssl.SSLContext:
        """A client context that trusts this certificate only, checking its name."""
        return ssl.create_default_context(cafile=self.cert)


def make_certificate(directory: Path) -> Certificate:
    """A self-signed P-256 certificate for 127.0.0.1 (and localhost), valid for a day."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [OPENSSL.path, "req", "-x509", "-newkey", "ec",
         "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True, timeout=30,
    )
    public = subprocess.run([OPENSSL.path, "x509", "-in", str(cert), "-pubkey", "-noout"],
                            check=True, capture_output=True, timeout=30).stdout
    der = subprocess.run([OPENSSL.path, "pkey", "-pubin", "-outform", "der"], input=public,
                         check=True, capture_output=True, timeout=30).stdout
    spki = base64.b64encode(hashlib.sha256(der).digest()).decode()
    return Certificate(cert, key, spki)


def _swap(text: str, pattern: str, replacement: str, what: str) -> str:
    text, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count == 1, f"deploy/nginx.conf: {what} not found"
    return text


def site_config(upstreams: Sequence[int], http_port: int, https_port: int,
                certificate: Certificate) -> str:
    """deploy/nginx.conf with the test's addresses, ports and certificate."""
    site = (ROOT / "deploy" / "nginx.conf").read_text()
    servers = re.findall(r"    server 127\.0\.0\.1:\d+( [^;]*)?;\n", site)
    assert servers, "deploy/nginx.conf: the upstream servers were not found"
    options = servers[0]
    lines = "".join(f"    server 127.0.0.1:{port}{options};\n" for port in upstreams)
    site = _swap(site, r"(    server 127\.0\.0\.1:\d+[^;]*;\n)+", lines, "the upstream servers")
    site = _swap(site, r"^    listen 80;", f"    listen 127.0.0.1:{http_port};", "listen 80")
    site = _swap(site, r"^    listen 443 ", f"    listen 127.0.0.1:{https_port} ", "listen 443")
    site = _swap(site, r"^    ssl_certificate .*;", f"    ssl_certificate {certificate.cert};",
                 "ssl_certificate")
    return _swap(site, r"^    ssl_certificate_key .*;",
                 f"    ssl_certificate_key {certificate.key};", "ssl_certificate_key")


def main_config(workdir: Path) -> str:
    """The main config around the site: our own pid, logs and temp paths."""
    # As root, the workers need a user (nginx would pick one that may not exist here).
    user = "user nobody nogroup;\n" if os.geteuid() == 0 else ""
    temp = "".join(f"    {kind}_temp_path {workdir}/{kind};\n"
                   for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return (
        f"{user}worker_processes 1;\ndaemon off;\npid {workdir}/nginx.pid;\n"
        # A graceful stop waits for open streams; a test's are over or may be cut.
        "worker_shutdown_timeout 2s;\n"
        f"error_log {workdir}/error.log warn;\n"
        "events { worker_connections 256; }\n"
        "http {\n" + temp +
        "    log_format upstreams '$request_method $uri $status $server_protocol "
        "$upstream_addr';\n"
        f"    access_log {workdir}/access.log upstreams;\n"
        # Which process served a response, for the tests (the site adds no header itself).
        "    add_header X-Upstream $upstream_addr;\n"
        f"    include {workdir}/sseserver.conf;\n"
        "}\n"
    )


@dataclass(frozen=True)
class Logged:
    """One request in nginx's access log."""

    method: str
    uri: str
    status: int
    protocol: str
    upstreams: tuple[str, ...]
    """Each upstream tried, in order ("127.0.0.1:PORT")."""


@dataclass
class Nginx:
    url: str
    """https://127.0.0.1:PORT, HTTP/2 or HTTP/1.1 as the client offers."""
    http_url: str
    """http://127.0.0.1:PORT, which only redirects."""
    certificate: Certificate
    access_log: Path
    error_log: Path

    def logged(self) -> list[Logged]:
        requests = []
        for line in self.access_log.read_text().splitlines():
            method, uri, status, protocol, upstreams = line.split(" ", 4)
            tried = tuple(u.strip() for u in upstreams.split(",")) if upstreams != "-" else ()
            requests.append(Logged(method, uri, int(status), protocol, tried))
        return requests

    async def wait_logged(self, count: int, timeout: float = 5) -> list[Logged]:
        """nginx logs a request once it is over, a moment after the client saw its end."""
        deadline = time.monotonic() + timeout
        while len(logged := self.logged()) < count:
            assert time.monotonic() < deadline, f"{len(logged)} of {count} requests logged"
            await asyncio.sleep(0.02)
        return logged


@pytest.fixture
def nginx_workdir() -> Iterator[Path]:
    require(NGINX, OPENSSL)
    workdir = Path(tempfile.mkdtemp(prefix="sseserver-nginx-"))
    workdir.chmod(0o755)  # nginx's workers (nobody) reach their temp paths through it
    yield workdir
    shutil.rmtree(workdir, ignore_errors=True)


def _start(workdir: Path, config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [NGINX.path, "-p", str(workdir), "-c", str(config), "-e", str(workdir / "error.log")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


@contextlib.asynccontextmanager
async def running_nginx(workdir: Path, upstreams: Sequence[int]) -> AsyncIterator[Nginx]:
    """nginx with deploy/nginx.conf in front of `upstreams` (ports on 127.0.0.1), until
    the block ends (then a graceful stop)."""
    certificate = make_certificate(workdir)
    # nginx cannot bind port 0 and report it: its ports are held for it until it has
    # stopped (tests/support/ports.py), so no other socket takes one before nginx binds it.
    with HeldPort() as http, HeldPort() as https:
        (workdir / "sseserver.conf").write_text(
            site_config(upstreams, http.port, https.port, certificate))
        config = workdir / "nginx.conf"
        config.write_text(main_config(workdir))
        process = _start(workdir, config)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", https.port), timeout=1).close()
                    break
                except OSError:
                    assert process.poll() is None, process.communicate()[1].decode()
                    assert time.monotonic() < deadline, "nginx did not start"
                    await asyncio.sleep(0.05)
            yield Nginx(f"https://127.0.0.1:{https.port}", f"http://127.0.0.1:{http.port}",
                        certificate, workdir / "access.log", workdir / "error.log")
        finally:
            process.send_signal(signal.SIGQUIT)  # graceful stop, while streams end
            try:
                process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                process.send_signal(signal.SIGTERM)  # fast stop: open streams are cut
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stderr is not None:
                process.stderr.close()
