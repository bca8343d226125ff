"""Transfer-syntax negotiation (PS3.18 8.7.3) and the lossless transcodes we offer (HTJ2K, JPEG-LS).

Originals go out as stored unless the client asks for something else in ``Accept``; we only ever transcode
losslessly (a lossy stored original is returned as it is, never re-encoded).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import imagecodecs
import numpy as np

EXPLICIT_LE = "1.2.840.10008.1.2.1"
IMPLICIT_LE = "1.2.840.10008.1.2"
HTJ2K_LOSSLESS = "1.2.840.10008.1.2.4.201"
HTJ2K_LOSSLESS_RPCL = "1.2.840.10008.1.2.4.202"
JPEGLS_LOSSLESS = "1.2.840.10008.1.2.4.80"

# media type of a frame in each transfer syntax (PS3.18 Table 8.7.3-2 and -3)
FRAME_MEDIA = {
    IMPLICIT_LE: "application/octet-stream", EXPLICIT_LE: "application/octet-stream",
    "1.2.840.10008.1.2.2": "application/octet-stream", "1.2.840.10008.1.2.1.99": "application/octet-stream",
    "1.2.840.10008.1.2.4.50": "image/jpeg", "1.2.840.10008.1.2.4.51": "image/jpeg",
    "1.2.840.10008.1.2.4.57": "image/jpeg", "1.2.840.10008.1.2.4.70": "image/jpeg",
    JPEGLS_LOSSLESS: "image/jls", "1.2.840.10008.1.2.4.81": "image/jls",
    "1.2.840.10008.1.2.4.90": "image/jp2", "1.2.840.10008.1.2.4.91": "image/jp2",
    "1.2.840.10008.1.2.4.92": "image/jpx", "1.2.840.10008.1.2.4.93": "image/jpx",
    HTJ2K_LOSSLESS: "image/jphc", HTJ2K_LOSSLESS_RPCL: "image/jphc", "1.2.840.10008.1.2.4.203": "image/jphc",
    "1.2.840.10008.1.2.5": "image/dicom-rle",
}
# what a media type means when the client names no transfer syntax
DEFAULT_SYNTAX = {
    "application/octet-stream": EXPLICIT_LE, "application/dicom": EXPLICIT_LE, "image/jls": JPEGLS_LOSSLESS,
    "image/jphc": HTJ2K_LOSSLESS, "image/jpeg": "1.2.840.10008.1.2.4.70", "image/jp2": "1.2.840.10008.1.2.4.90",
    "image/dicom-rle": "1.2.840.10008.1.2.5",
}
# what we can make from any original (losslessly)
PRODUCIBLE = (EXPLICIT_LE, HTJ2K_LOSSLESS, JPEGLS_LOSSLESS)


class NotAcceptable(ValueError):
    """No representation the client accepts can be produced; the message lists what can."""


@dataclass(frozen=True)
class Acceptable:
    media_type: str  # for multipart/related: the part type
    transfer_syntax: str | None  # None: not named; "*": any
    q: float
    multipart: bool


def parse_accept(header: str | None) -> list[Acceptable]:
    """``Accept`` entries, best first. Parameters inside quotes may contain commas and semicolons."""
    if not header or not header.strip():
        return []
    out = []
    for n, item in enumerate(_split_outside_quotes(header, ",")):
        fields = _split_outside_quotes(item, ";")
        media = fields[0].strip().lower()
        params = {}
        for f in fields[1:]:
            k, _, v = f.partition("=")
            params[k.strip().lower()] = v.strip().strip('"')
        try:
            q = float(params.get("q", 1))
        except ValueError:
            q = 1.0
        multipart = media == "multipart/related"
        part = params.get("type", "").lower() if multipart else media
        out.append((q, -n, Acceptable(part or "*/*", params.get("transfer-syntax"), q, multipart)))
    return [a for _, _, a in sorted(out, key=lambda t: (t[0], t[1]), reverse=True) if a.q > 0]


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    return [p for p in re.split(sep + r'(?=(?:[^"]*"[^"]*")*[^"]*$)', text) if p.strip()]


def choose_frame_syntax(accept: list[Acceptable], stored: str) -> tuple[str, str]:
    """The (transfer syntax, media type) of frames for this client. Stored syntax wins when acceptable."""
    stored_media = FRAME_MEDIA.get(stored, "application/octet-stream")
    for a in accept or [Acceptable("*/*", None, 1.0, True)]:
        if a.media_type in ("*/*", "*", ""):
            return stored, stored_media
        wanted = a.transfer_syntax
        if wanted in (None, "*"):
            if a.media_type == stored_media and (wanted == "*" or stored_media != "application/octet-stream"):
                return stored, stored_media
            wanted = DEFAULT_SYNTAX.get(a.media_type)
        if wanted == stored or (wanted == EXPLICIT_LE and stored == IMPLICIT_LE):  # same pixel bytes
            return stored, stored_media
        if wanted in PRODUCIBLE and FRAME_MEDIA[wanted] == a.media_type:
            return wanted, a.media_type
    raise NotAcceptable(f"frames are stored as {stored}; we can send them as stored or losslessly as "
                        f"{', '.join(f'{FRAME_MEDIA[t]} transfer-syntax={t}' for t in PRODUCIBLE)}")


def choose_instance_syntax(accept: list[Acceptable], stored: str) -> str:
    """Transfer syntax of whole instances (application/dicom). No parameter or ``*``: as stored."""
    if not accept:
        return stored
    for a in accept:
        if a.media_type not in ("application/dicom", "*/*", "*", ""):
            continue
        if a.transfer_syntax in (None, "*") or a.transfer_syntax == stored:
            return stored
        if a.transfer_syntax in PRODUCIBLE:
            return a.transfer_syntax
    raise NotAcceptable(f"instances are stored as {stored}; ask for application/dicom with transfer-syntax=* "
                        f"(as stored) or one of {', '.join(PRODUCIBLE)}")


def encode_frame(arr: np.ndarray, syntax: str) -> bytes:
    """A decoded frame in ``syntax``: native little endian bytes, or a lossless codestream."""
    if syntax in (EXPLICIT_LE, IMPLICIT_LE):
        return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
    if syntax == HTJ2K_LOSSLESS:
        return bytes(imagecodecs.htj2k_encode(np.ascontiguousarray(arr), reversible=True))
    if syntax == JPEGLS_LOSSLESS:
        return bytes(imagecodecs.jpegls_encode(np.ascontiguousarray(arr), level=0))
    raise NotAcceptable(f"cannot encode frames as {syntax}")


def decode_frame(data: bytes, syntax: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    if syntax in (EXPLICIT_LE, IMPLICIT_LE):
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    if syntax in (HTJ2K_LOSSLESS, HTJ2K_LOSSLESS_RPCL):
        return imagecodecs.htj2k_decode(data)
    if syntax == JPEGLS_LOSSLESS:
        return imagecodecs.jpegls_decode(data)
    raise NotAcceptable(f"cannot decode {syntax}")
