"""ACK / NAK messages (HL7 v2.5.1 MSA and ERR)."""
from __future__ import annotations

from datetime import datetime

from pipelines.hl7.message import CHINA, Encoding, Hl7Error, Message

CANONICAL = {"utf-8": "UNICODE UTF-8", "gb18030": "GB 18030-2000", "ascii": "ASCII", "latin-1": "8859/1"}
ERROR_NAMES = {"100": "Segment sequence error", "101": "Required field missing", "102": "Data type error",
               "103": "Table value not found", "200": "Unsupported message type", "201": "Unsupported event code",
               "203": "Unsupported version ID", "207": "Application internal error"}


def build_ack(msg: Message | None, code: str, *, control_id: str, error: Hl7Error | None = None) -> bytes:
    """An ACK for ``msg`` (or for unparseable bytes when ``msg`` is None), in the sender's character set."""
    enc = msg.encoding if msg else Encoding()
    f, c = enc.field, enc.component
    esc = enc.escape_text
    stamp = datetime.now(CHINA)
    now = stamp.strftime("%Y%m%d%H%M%S%z")
    their_app = esc(msg.msh.get(3)) if msg else ""
    their_fac = esc(msg.sending_facility) if msg else ""
    trigger = esc(msg.trigger) if msg else ""
    charset = msg.declared_charset if msg else ""
    if msg and msg.notes and msg.declared_charset:  # the declaration was wrong: say what we actually read
        charset = CANONICAL.get(msg.charset, charset)
    version = esc(msg.version) if msg and msg.version else "2.5.1"
    enc_chars = c + enc.repetition + enc.escape + enc.subcomponent
    msh = f.join(["MSH", enc_chars, "WANYING", "WANYING", their_app, their_fac, now, "",
                  f"ACK{c}{trigger}{c}ACK", "WY" + stamp.strftime("%Y%m%d%H%M%S%f"), "P", version,
                  "", "", "", "", "", charset])
    text = error.reason if error else ""
    msa = f.join(["MSA", code, esc(control_id), esc(text)[:800]])
    segments = [msh, msa]
    if error is not None:
        seg, _, field_no = error.location.partition("-")
        location = f"{esc(seg)}{c}1{c}{field_no}" if field_no.isdigit() else esc(error.location)
        name = ERROR_NAMES.get(error.code, "Application error")
        segments.append(f.join(["ERR", "", location, f"{error.code}{c}{name}{c}HL70357", "E", "", "", "",
                                esc(error.reason)[:800]]))
    body = "\r".join(segments) + "\r"
    codec = msg.charset if msg else "utf-8"
    return body.encode(codec, errors="replace")
