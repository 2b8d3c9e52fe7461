"""Real files for the attachment tests: a PNG a browser draws, a GIF, a JPEG head, a PDF
whose page shows a known sentence, at any size; and the content blocks that carry them
(docs/protocol.md, "Attachments")."""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib
from typing import Any, Final

PDF_SENTENCE: Final = "The tenant pays rent on the first day of each month."


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(
        ">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width: int = 8, height: int = 8, rgb: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    """A real PNG of one colour."""
    row = b"\x00" + bytes(rgb) * width
    return (b"\x89PNG\r\n\x1a\n"
            + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + _chunk(b"IDAT", zlib.compress(row * height)) + _chunk(b"IEND", b""))


def gif() -> bytes:
    """A real 1x1 GIF."""
    return (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00"
            b"\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def pdf(size: int = 0, sentence: str = PDF_SENTENCE) -> bytes:
    """A one-page PDF showing `sentence`, padded with a comment to at least `size` bytes."""
    stream = f"BT /F1 12 Tf 72 720 Td ({sentence}) Tj ET".encode("latin-1")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%b\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%b\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n" % (len(objects) + 1, xref)
    padding = size - len(out) - len(b"%%EOF\n")
    while padding > 0:  # comment lines the reader skips
        line = min(padding, 4096)
        out += b"%" + b"x" * (line - 2) + b"\n" if line >= 2 else b"\n" * line
        padding -= line
    return bytes(out + b"%%EOF\n")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image(data: bytes, media_type: str = "image/png") -> dict[str, Any]:
    return {"type": "image", "source": {"type": "base64", "media_type": media_type,
                                        "data": b64(data)}}


def document(data: bytes, title: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": b64(data)}}
    if title is not None:
        block["title"] = title
    return block


def text_document(text: str, title: str | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "document", "source": {
        "type": "text", "media_type": "text/plain", "data": text}}
    if title is not None:
        block["title"] = title
    return block
