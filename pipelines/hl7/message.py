"""A tolerant, exact HL7 v2 parser: encoding characters from MSH-1/2, escapes, repetitions, components,
sub-components, and the character set of MSH-18 with detection as the fallback.

Bytes are decoded before splitting: GBK trail bytes include 0x7C ``|`` and 0x5E ``^``, so splitting raw bytes
would cut Chinese names in half.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

CHINA = timezone(timedelta(hours=8))

#: MSH-18 value -> Python codec. GB18030 decodes GBK and GB2312 byte-for-byte, so all three use it.
CHARSETS = {
    "UNICODE UTF-8": "utf-8", "UTF-8": "utf-8", "UTF8": "utf-8", "UNICODE": "utf-8",
    "GB 18030-2000": "gb18030", "GB18030": "gb18030", "GB 18030": "gb18030", "GB18030-2000": "gb18030",
    "GBK": "gb18030", "GB2312": "gb18030", "GB 2312": "gb18030", "CHINESE": "gb18030",
    "ASCII": "ascii", "8859/1": "latin-1", "ISO-8859-1": "latin-1", "ISO IR100": "latin-1",
}
MAX_MESSAGE_BYTES = 4_000_000
_SEGMENT_NAME = re.compile(r"^[A-Z][A-Z0-9]{2}$")


class Hl7Error(ValueError):
    """A message we refuse. ``ack`` is AR (rejected: don't resend as is) or AE (error in the content);
    ``code`` is from HL7 table 0357; ``location`` is like ``PID-3``; ``reason`` says what to fix."""

    def __init__(self, reason: str, *, ack: str = "AE", code: str = "207", location: str = "") -> None:
        super().__init__(reason)
        self.reason, self.ack, self.code, self.location = reason, ack, code, location


@dataclass(frozen=True)
class Encoding:
    field: str = "|"
    component: str = "^"
    repetition: str = "~"
    escape: str = "\\"
    subcomponent: str = "&"

    def escape_text(self, text: str) -> str:
        e = self.escape
        out = text.replace(e, f"{e}E{e}")
        for ch, code in ((self.field, "F"), (self.component, "S"), (self.repetition, "R"), (self.subcomponent, "T")):
            out = out.replace(ch, f"{e}{code}{e}")
        return out.replace("\r", f"{e}.br{e}").replace("\n", f"{e}.br{e}")


@dataclass
class Segment:
    name: str
    fields: list[str]  # raw, still escaped; index n is field n (for MSH, 1 is the separator, 2 the encoding)
    enc: Encoding
    charset: str = "utf-8"

    def raw(self, n: int) -> str:
        return self.fields[n] if 0 <= n < len(self.fields) else ""

    def reps(self, n: int) -> list[str]:
        value = self.raw(n)
        if self.name == "MSH" and n <= 2:
            return [value] if value else []
        return [r for r in value.split(self.enc.repetition)] if value else []

    def components(self, n: int, rep: int = 1) -> list[str]:
        reps = self.reps(n)
        if len(reps) < rep:
            return []
        return [unescape(c.split(self.enc.subcomponent)[0], self.enc, self.charset)
                for c in reps[rep - 1].split(self.enc.component)]

    def get(self, n: int, rep: int = 1, comp: int = 1, sub: int = 1) -> str:
        reps = self.reps(n)
        if len(reps) < rep:
            return ""
        comps = reps[rep - 1].split(self.enc.component)
        if len(comps) < comp:
            return ""
        subs = comps[comp - 1].split(self.enc.subcomponent)
        if len(subs) < sub:
            return ""
        return unescape(subs[sub - 1], self.enc, self.charset).strip()


@dataclass
class Message:
    raw: bytes
    charset: str
    declared_charset: str
    encoding: Encoding
    segments: list[Segment]
    notes: list[str] = field(default_factory=list)

    def segment(self, name: str) -> Segment | None:
        return next((s for s in self.segments if s.name == name), None)

    def all(self, name: str) -> list[Segment]:
        return [s for s in self.segments if s.name == name]

    @property
    def msh(self) -> Segment:
        return self.segments[0]

    @property
    def message_type(self) -> str:
        return self.msh.get(9, comp=1).upper()

    @property
    def trigger(self) -> str:
        return self.msh.get(9, comp=2).upper()

    @property
    def control_id(self) -> str:
        return self.msh.get(10)

    @property
    def sending_facility(self) -> str:
        return self.msh.get(4)

    @property
    def version(self) -> str:
        return self.msh.get(12)


def unescape(text: str, enc: Encoding, charset: str = "utf-8") -> str:
    e = enc.escape
    if not e or e not in text:
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch != e:
            out.append(ch)
            i += 1
            continue
        end = text.find(e, i + 1)
        if end < 0:  # unterminated escape: keep the rest as sent
            out.append(text[i:])
            break
        code = text[i + 1:end]
        out.append(_escape_value(code, enc, charset, text[i:end + 1]))
        i = end + 1
    return "".join(out)


def _escape_value(code: str, enc: Encoding, charset: str, literal: str) -> str:
    simple = {"F": enc.field, "S": enc.component, "R": enc.repetition, "E": enc.escape, "T": enc.subcomponent,
              ".br": "\n", "H": "", "N": "", ".sp": "\n"}
    if code in simple:
        return simple[code]
    if code.startswith("X") and len(code) % 2 == 1 and re.fullmatch(r"[0-9A-Fa-f]*", code[1:]):
        try:
            return bytes.fromhex(code[1:]).decode(charset)
        except (UnicodeDecodeError, LookupError):
            return bytes.fromhex(code[1:]).decode("gb18030", errors="replace")
    if code[:1] in ("C", "M") or code.startswith((".in", ".ti", ".sk", ".ce", ".fi", ".nf")):
        return ""  # character-set switches and formatting hints carry no text
    return literal


def _declared_charset(raw: bytes, field_sep: bytes) -> str:
    first_line = re.split(rb"[\r\n]", raw, maxsplit=1)[0]
    parts = first_line.decode("latin-1").split(field_sep.decode("latin-1"))
    # parts[0]="MSH", parts[1]=encoding chars => MSH-n is parts[n-1]
    value = parts[17] if len(parts) > 17 else ""
    return value.split("~")[0].strip().upper()


def decode(raw: bytes, declared: str) -> tuple[str, str, list[str]]:
    """Text, codec used, notes. Raises :class:`Hl7Error` when no codec fits."""
    notes: list[str] = []
    codec = CHARSETS.get(declared) if declared else None
    if declared and codec is None:
        notes.append(f"MSH-18 {declared!r} is not a known character set; detected instead")
    if codec:
        try:
            return raw.decode(codec), codec, notes
        except UnicodeDecodeError:
            notes.append(f"bytes are not valid {declared} (MSH-18); detected instead")
    for guess in ("utf-8", "gb18030"):
        try:
            return raw.decode(guess), guess, notes
        except UnicodeDecodeError:
            continue
    raise Hl7Error("message bytes are neither UTF-8 nor GB18030/GBK; set MSH-18 to the character set you send "
                   "(UNICODE UTF-8 or GB 18030-2000)", ack="AR", code="102", location="MSH-18")


def parse(raw: bytes) -> Message:
    if not raw:
        raise Hl7Error("empty message", ack="AR", code="100", location="MSH")
    if len(raw) > MAX_MESSAGE_BYTES:
        raise Hl7Error(f"message is {len(raw)} bytes; the limit is {MAX_MESSAGE_BYTES}", ack="AR", code="207")
    body = raw[3:] if raw.startswith(b"\xef\xbb\xbf") else raw
    body = body.lstrip(b"\r\n\t ")
    if not body.startswith(b"MSH") or len(body) < 8:
        raise Hl7Error("message must start with an MSH segment (MSH|^~\\&|...)", ack="AR", code="100",
                       location="MSH")
    field_sep = body[3:4]
    if not (0x21 <= field_sep[0] <= 0x7E) or field_sep.isalnum():
        raise Hl7Error("MSH-1 field separator must be a printable ASCII symbol such as '|'", ack="AR", code="102",
                       location="MSH-1")
    enc_end = body.find(field_sep, 4)
    enc_chars = (body[4:enc_end] if enc_end >= 0 else body[4:]).decode("latin-1")
    if not 4 <= len(enc_chars) <= 5 or len(set(enc_chars + field_sep.decode())) != len(enc_chars) + 1 or any(
            c.isalnum() or not (0x21 <= ord(c) <= 0x7E) for c in enc_chars):
        raise Hl7Error("MSH-2 encoding characters must be 4 distinct symbols, normally ^~\\&", ack="AR",
                       code="102", location="MSH-2")
    enc = Encoding(field_sep.decode(), enc_chars[0], enc_chars[1], enc_chars[2], enc_chars[3])
    declared = _declared_charset(body, field_sep)
    text, codec, notes = decode(body, declared)
    lines = [ln for ln in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if ln.strip()]
    segments: list[Segment] = []
    for n, line in enumerate(lines, start=1):
        name = line[:3]
        if not _SEGMENT_NAME.match(name) or (len(line) > 3 and line[3] != enc.field):
            raise Hl7Error(f"segment {n} does not start with a 3-character segment name and '{enc.field}'; "
                           f"segments must be separated by carriage returns", ack="AR",
                           code="100", location=f"segment {n}")
        if name == "MSH":
            if n != 1:
                raise Hl7Error("only one MSH segment per message (split batches into messages)", ack="AR",
                               code="100", location=f"segment {n}")
            fields = ["MSH", enc.field] + line[4:].split(enc.field)
        else:
            fields = line.split(enc.field)
        segments.append(Segment(name, fields, enc, codec))
    msg = Message(raw, codec, declared, enc, segments, notes)
    if not msg.message_type:
        raise Hl7Error("MSH-9 message type is empty", ack="AR", code="101", location="MSH-9")
    if not msg.control_id:
        raise Hl7Error("MSH-10 message control ID is empty", ack="AR", code="101", location="MSH-10")
    return msg


def parse_ts(value: str, location: str) -> datetime | None:
    """HL7 DTM (YYYY[MM[DD[HH[MM[SS[.S+]]]]]][+/-ZZZZ]) -> aware datetime; no offset means +08:00."""
    value = value.strip()
    if not value:
        return None
    m = re.fullmatch(r"(\d{4})(\d{2})?(\d{2})?(\d{2})?(\d{2})?(\d{2})?(?:\.(\d{1,6}))?([+-]\d{4})?", value)
    if not m:
        # The value is not echoed: it may be a birth date.
        raise Hl7Error(f"{location} is not an HL7 date/time (YYYYMMDDHHMMSS[+ZZZZ])", code="102",
                       location=location)
    y, mo, d, h, mi, s, frac, off = m.groups()
    tz = CHINA
    if off:
        sign = 1 if off[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(off[1:3]), minutes=int(off[3:5])))
    try:
        return datetime(int(y), int(mo or 1), int(d or 1), int(h or 0), int(mi or 0), int(s or 0),
                        int((frac or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError:
        raise Hl7Error(f"{location} is not a real date/time", code="102", location=location) from None


def parse_date(value: str, location: str) -> date | None:
    ts = parse_ts(value, location)
    return ts.date() if ts else None
