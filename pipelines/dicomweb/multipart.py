"""multipart/related framing (RFC 2387, PS3.18 8.6.1.2): writing responses part by part, reading STOW-RS bodies."""
from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Iterable, Iterator


class MultipartError(ValueError):
    """The body is not valid multipart/related; the message says why."""


@dataclass(frozen=True)
class Part:
    content_type: str
    body: bytes | memoryview
    headers: dict[str, str] = field(default_factory=dict)


def new_boundary() -> str:
    return "wanying-" + secrets.token_hex(16)


def related_content_type(part_type: str, boundary: str, transfer_syntax: str | None = None) -> str:
    """The response's Content-Type; ``part_type`` already carries its own parameters if any."""
    quoted = part_type.replace('"', "'")
    ts = f"; transfer-syntax={transfer_syntax}" if transfer_syntax else ""
    return f'multipart/related; type="{quoted}"; boundary={boundary}{ts}'


def frame_parts(parts: Iterable[Part], boundary: str) -> Iterator[bytes]:
    """The body, one chunk per part header and one per part body (no copy of large bodies)."""
    delimiter = f"--{boundary}\r\n".encode()
    first = True
    for part in parts:
        head = [f"Content-Type: {part.content_type}"] + [f"{k}: {v}" for k, v in part.headers.items()]
        yield (b"" if first else b"\r\n") + delimiter + ("\r\n".join(head) + "\r\n\r\n").encode()
        yield part.body
        first = False
    yield (b"" if first else b"\r\n") + f"--{boundary}--\r\n".encode()


def boundary_of(content_type: str) -> str:
    match = re.search(r'boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', content_type or "", re.I)
    if not match:
        raise MultipartError("Content-Type has no boundary parameter (expected multipart/related; boundary=...)")
    return match.group(1) or match.group(2)


def split_parts(body: bytes, content_type: str) -> list[Part]:
    """The parts of a multipart body. Tolerates LF-only line ends and a missing final CRLF."""
    delim = b"--" + boundary_of(content_type).encode()
    pieces = body.split(delim)
    if len(pieces) < 3:
        raise MultipartError("the body holds no part delimited by its boundary")
    parts = []
    for piece in pieces[1:]:
        if piece.startswith(b"--"):
            break  # close delimiter
        piece = piece[2:] if piece.startswith(b"\r\n") else piece[1:] if piece.startswith(b"\n") else piece
        head, sep, data = piece.partition(b"\r\n\r\n")
        if not sep:
            head, sep, data = piece.partition(b"\n\n")
            if not sep:
                raise MultipartError("a part has no blank line between its headers and its body")
        if data.endswith(b"\r\n"):
            data = data[:-2]
        elif data.endswith(b"\n"):
            data = data[:-1]
        headers = {}
        for line in head.decode("latin-1").splitlines():
            k, _, v = line.partition(":")
            if k.strip():
                headers[k.strip().lower()] = v.strip()
        parts.append(Part(headers.get("content-type", ""), data, headers))
    return parts
