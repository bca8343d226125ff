"""A structural check of an encoded DICOM dataset: every element header, VR and length is walked, nested
sequences and encapsulated pixel data included, without decoding any value.

pydicom reads leniently (a truncated value or an unknown VR becomes a warning or a short value); before we accept
and store an instance we want to know that its bytes are a complete, well-formed element stream, so that what we
keep can be read back by any DICOM toolkit.
"""
from __future__ import annotations

import struct
import zlib

from pydicom.datadict import dictionary_VR

VALID_VRS = frozenset(
    b"AE AS AT CS DA DS DT FL FD IS LO LT OB OD OF OL OV OW PN SH SL SQ SS ST SV TM UC UI UL UN UR US UT UV".split()
)
LONG_VRS = frozenset(b"OB OD OF OL OV OW SQ SV UC UN UR UT UV".split())
UNDEFINED = 0xFFFFFFFF
ITEM, ITEM_END, SEQ_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD
PIXEL_DATA = 0x7FE00010
MAX_DEPTH = 32

IMPLICIT_LE = "1.2.840.10008.1.2"
EXPLICIT_BE = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")


class Malformed(ValueError):
    """The bytes are not a well-formed DICOM element stream; the message says where and why."""


def check_dataset(buf: bytes | memoryview, transfer_syntax: str,
                  collect: frozenset[int] = frozenset()) -> dict[int, bytes]:
    """Raise :class:`Malformed` unless ``buf`` is exactly one complete dataset in ``transfer_syntax``.

    Returns the raw values of the top-level elements whose tags are in ``collect`` (so callers need not parse the
    dataset a second time to find its UIDs)."""
    data = memoryview(buf)
    if transfer_syntax in DEFLATED:
        try:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            data = memoryview(inflater.decompress(bytes(data)) + inflater.flush())
        except zlib.error as exc:
            raise Malformed(f"deflated dataset does not inflate: {exc}") from None
        if not inflater.eof:
            raise Malformed("deflated dataset is truncated")
    explicit = transfer_syntax != IMPLICIT_LE
    endian = ">" if transfer_syntax == EXPLICIT_BE else "<"
    walker = _Walker(data, explicit, endian, collect)
    walker.dataset(0, len(data), 0, in_item=False)
    return walker.found


class _Walker:
    def __init__(self, buf: memoryview, explicit: bool, endian: str, collect: frozenset[int] = frozenset()) -> None:
        self.buf, self.explicit, self.endian = buf, explicit, endian
        self.collect, self.found = collect, {}
        self.u16, self.u32 = struct.Struct(endian + "H"), struct.Struct(endian + "I")
        self.tag = struct.Struct(endian + "HH")

    def _tag_at(self, pos: int) -> int:
        group, elem = self.tag.unpack_from(self.buf, pos)
        return group << 16 | elem

    def dataset(self, pos: int, end: int, depth: int, *, in_item: bool, explicit: bool | None = None) -> int:
        """Walk elements from ``pos``; in an undefined-length item, stop after the item delimiter."""
        explicit = self.explicit if explicit is None else explicit
        if depth > MAX_DEPTH:
            raise Malformed(f"sequences nested deeper than {MAX_DEPTH} levels")
        while pos < end:
            if end - pos < 8:
                raise Malformed(f"truncated element header at byte {pos}")
            tag = self._tag_at(pos)
            if tag >> 16 == 0xFFFE:
                if tag == ITEM_END and in_item:
                    return pos + 8
                raise Malformed(f"unexpected delimiter ({tag >> 16:04X},{tag & 0xFFFF:04X}) at byte {pos}")
            if explicit:
                vr = bytes(self.buf[pos + 4:pos + 6])
                if vr not in VALID_VRS:
                    raise Malformed(f"invalid VR {vr!r} in element ({tag >> 16:04X},{tag & 0xFFFF:04X}) at byte {pos}")
                if vr in LONG_VRS:
                    if end - pos < 12:
                        raise Malformed(f"truncated element header at byte {pos}")
                    length, pos = self.u32.unpack_from(self.buf, pos + 8)[0], pos + 12
                else:
                    length, pos = self.u16.unpack_from(self.buf, pos + 6)[0], pos + 8
            else:
                length, pos = self.u32.unpack_from(self.buf, pos + 4)[0], pos + 8
                vr = _implicit_vr(tag)
            where = f"({tag >> 16:04X},{tag & 0xFFFF:04X})"
            if length == UNDEFINED:
                if depth == 0 and tag in self.collect:
                    self.found[tag] = b""  # present (a sequence: the caller parses it if it needs it)
                if tag == PIXEL_DATA:
                    pos = self.fragments(pos, end)
                elif vr in (b"SQ", b"UN", None):
                    # an undefined-length UN holds implicit VR little endian (PS3.5 6.2.2)
                    pos = self.sequence(pos, end, depth + 1, explicit=explicit and vr == b"SQ")
                else:
                    raise Malformed(f"element {where} of VR {vr.decode()} has undefined length")
            else:
                if length > end - pos:
                    raise Malformed(f"truncated: element {where} claims {length} bytes, {end - pos} remain")
                if vr == b"SQ":
                    self.sequence(pos, pos + length, depth + 1, explicit=explicit, defined=True)
                if depth == 0 and tag in self.collect:
                    self.found[tag] = bytes(self.buf[pos:pos + length])
                pos += length
        if in_item:
            raise Malformed("item without its delimiter (truncated)")
        return pos

    def sequence(self, pos: int, end: int, depth: int, *, explicit: bool, defined: bool = False) -> int:
        while pos < end:
            if end - pos < 8:
                raise Malformed(f"truncated sequence item header at byte {pos}")
            tag = self._tag_at(pos)
            length = self.u32.unpack_from(self.buf, pos + 4)[0]
            pos += 8
            if tag == SEQ_END and not defined:
                return pos
            if tag != ITEM:
                raise Malformed(f"expected a sequence item at byte {pos - 8}, "
                                f"found ({tag >> 16:04X},{tag & 0xFFFF:04X})")
            if length == UNDEFINED:
                pos = self.dataset(pos, end, depth, in_item=True, explicit=explicit)
            else:
                if length > end - pos:
                    raise Malformed(f"truncated: sequence item claims {length} bytes, {end - pos} remain")
                self.dataset(pos, pos + length, depth, in_item=False, explicit=explicit)
                pos += length
        if not defined:
            raise Malformed("sequence without its delimiter (truncated)")
        return pos

    def fragments(self, pos: int, end: int) -> int:
        count = 0
        while pos < end:
            if end - pos < 8:
                raise Malformed(f"truncated pixel data fragment header at byte {pos}")
            tag = self._tag_at(pos)
            length = self.u32.unpack_from(self.buf, pos + 4)[0]
            pos += 8
            if tag == SEQ_END:
                if count == 0:
                    raise Malformed("encapsulated pixel data has no basic offset table item")
                return pos
            if tag != ITEM or length == UNDEFINED:
                raise Malformed(f"bad encapsulated pixel data fragment at byte {pos - 8}")
            if length > end - pos:
                raise Malformed(f"truncated: pixel data fragment claims {length} bytes, {end - pos} remain")
            pos += length
            count += 1
        raise Malformed("encapsulated pixel data without its delimiter (truncated)")


def _implicit_vr(tag: int) -> bytes | None:
    if tag & 0xFFFF == 0:
        return b"UL"  # group length
    try:
        return dictionary_VR(tag).split(" or ")[0].encode()
    except KeyError:
        return None  # private or unknown: opaque bytes unless the length is undefined
