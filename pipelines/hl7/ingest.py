"""One HL7 message in, events out and an ACK back; every refusal kept in the dead-letter store."""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from pipelines.crypto import Keyring
from pipelines.deadletter import DeadLetterStore
from pipelines.hl7.ack import build_ack
from pipelines.hl7.convert import Conversion, Converter
from pipelines.hl7.message import Hl7Error, Message, parse
from pipelines.hl7.senders import HisSenders
from streams.log.port import EventLog, Position
from streams.topics import publish

log = logging.getLogger(__name__)
CHANNEL = "hl7"


def append_conversion(log: EventLog, conversion: Conversion, mappings=None) -> list[Position]:
    """Append converted HIS events. Each order's local code goes through the mapping table: its standard items
    follow as ExamItemsResolved, or the code is queued for review (and resolved when it is mapped)."""
    events = []
    for event in conversion.events:
        events.append(event)
        if mappings is not None and event.type == "ExamOrdered":
            events += mappings.resolve_order(event)
    return publish(log, events)


@dataclass
class Hl7Ingest:
    log: EventLog
    dead_letters: DeadLetterStore
    keys: Keyring
    senders: HisSenders
    mappings: object | None = None  # pipelines.mapping.store.MappingStore: ordered codes join the review queue
    counts: dict[str, int] = field(default_factory=lambda: {"accepted": 0, "rejected": 0, "errors": 0})
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def _count(self, what: str) -> None:
        with self._lock:  # the MLLP server calls handle() from worker threads
            self.counts[what] += 1

    def accept(self, raw: bytes, source: str = "") -> tuple[Message, list[Position]]:
        """Parse, convert and append; raises :class:`Hl7Error` with a reason the sender can act on."""
        return self._accept(parse(raw))

    def _accept(self, msg: Message) -> tuple[Message, list[Position]]:
        hospital = self.senders.hospital_of(msg.sending_facility)
        if hospital is None:
            raise Hl7Error(f"sending facility {msg.sending_facility or '(empty)'!r} (MSH-4) is not registered; ask "
                           f"the exchange operator to add it to the hospital directory (hl7_facilities)", ack="AR", code="103",
                           location="MSH-4")
        conversion = Converter(self.keys).convert(msg, hospital)
        return msg, append_conversion(self.log, conversion, self.mappings)

    def handle(self, raw: bytes, peer: str = "") -> bytes:
        """ACK bytes for one message. Never raises: a refusal is a NAK plus a dead letter."""
        msg: Message | None = None
        try:
            msg = parse(raw)
            self._accept(msg)
            self._count("accepted")
            return build_ack(msg, "AA", control_id=msg.control_id)
        except Hl7Error as exc:
            self._count("rejected")
            error = exc
        except Exception as exc:  # noqa: BLE001 - a bug must cost one message, never the listener
            log.exception("HL7 message from %s failed", peer)
            self._count("errors")
            error = Hl7Error(f"internal error ({type(exc).__name__}); the message is kept and will be replayed, "
                             f"no need to resend", ack="AE", code="207")
        source = (msg.sending_facility if msg and msg.sending_facility else peer) or "unknown"
        try:
            letter = self.dead_letters.put(channel=CHANNEL, source=source, reason=f"{error.location}: {error.reason}"
                                           if error.location else error.reason, body=raw)
            log.info("HL7 message from %s refused (%s), dead letter %s", source, error.reason, letter)
        except Exception:  # noqa: BLE001 - the store is down: tell the sender to retry instead of losing it
            log.exception("dead-letter store failed")
            error = Hl7Error("temporarily unable to store the message; resend it", ack="AE", code="207")
        try:
            return build_ack(msg, error.ack, control_id=msg.control_id if msg else "", error=error)
        except Exception:  # noqa: BLE001
            log.exception("could not build the ACK")
            return build_ack(None, error.ack, control_id="", error=error)

    def replay(self, raw: bytes, source: str) -> list[Position]:
        """Handler for :meth:`DeadLetterStore.replay`: accept again or raise."""
        return self.accept(raw, source)[1]
