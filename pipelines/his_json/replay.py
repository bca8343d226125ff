"""Replaying HIS dead letters (channels ``hl7``, ``his-fhir``, ``his-json``) once the cause is fixed.

``DeadLetterStore.replay(letter_id, his_replayer(letter.channel, ...))``: the handler raises with the reason if the
bytes are still refused, so the letter stays open; on success the events are appended and the letter is closed.
"""
from __future__ import annotations

from typing import Callable

from pipelines.crypto import Keyring
from pipelines.fhir.convert import FhirConverter
from pipelines.fhir.convert import parse_body as parse_fhir
from pipelines.his_json.convert import parse_body as parse_json
from pipelines.his_json.convert import to_events
from pipelines.hl7.ingest import Hl7Ingest, append_conversion
from pipelines.hl7.senders import HisSenders
from streams.log.port import EventLog, Position

CHANNELS = ("hl7", "his-fhir", "his-json")


def his_replayer(channel: str, log: EventLog, keys: Keyring, *, dead_letters=None, mappings=None,
                 senders: HisSenders | None = None) -> Callable[[bytes, str], list[Position]]:
    """A ``handler(body, source)`` for one channel; ``source`` is the hospital for the HTTP channels."""
    if channel == "hl7":
        return Hl7Ingest(log, dead_letters, keys, senders or HisSenders.load(), mappings).replay
    if channel == "his-fhir":
        return lambda body, hospital: append_conversion(
            log, FhirConverter(keys).convert(parse_fhir(body), hospital), mappings)
    if channel == "his-json":
        return lambda body, hospital: append_conversion(log, to_events(parse_json(body), hospital, keys), mappings)
    raise ValueError(f"channel {channel!r} is not a HIS channel ({', '.join(CHANNELS)})")
