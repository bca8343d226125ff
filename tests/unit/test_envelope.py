"""The envelope: UUIDv7 event ids, time-zone-aware timestamps, byte round trips."""
from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from schemas.envelope import Envelope, new_event_id

CST = timezone(timedelta(hours=8))


def _envelope(**over) -> Envelope:
    fields = dict(type="DoctorSignedIn", occurred_at=datetime(2026, 11, 28, 9, 30, tzinfo=CST), source="AH-HF-001",
                  key="AH-HF-001", payload={"hospital": "AH-HF-001", "doctor_id": "D42"})
    return Envelope(**{**fields, **over})


def test_event_id_is_uuid_version_7_with_rfc_variant():
    for _ in range(200):
        eid = new_event_id()
        assert eid.version == 7
        assert eid.variant == uuid.RFC_4122


def test_event_id_carries_its_millisecond_timestamp():
    ms = 1_795_000_000_123
    eid = new_event_id(ms)
    assert eid.int >> 80 == ms


def test_event_ids_sort_by_creation_time_across_milliseconds():
    ids = [new_event_id(1_795_000_000_000 + i) for i in range(0, 500, 3)]
    shuffled = sorted(ids, key=lambda u: u.hex[::-1])
    assert sorted(shuffled) == ids
    assert sorted(str(i) for i in ids) == [str(i) for i in ids]  # the text form sorts the same way


def test_event_ids_are_unique_within_one_millisecond():
    ids = {new_event_id(1_795_000_000_000) for _ in range(2000)}
    assert len(ids) == 2000


def test_default_event_id_is_now():
    before = int(datetime.now(timezone.utc).timestamp() * 1000)
    eid = _envelope().event_id
    after = int(datetime.now(timezone.utc).timestamp() * 1000)
    assert before <= eid.int >> 80 <= after


@pytest.mark.parametrize("field", ["occurred_at", "recorded_at"])
def test_naive_timestamps_are_refused_with_a_reason(field):
    with pytest.raises(ValidationError) as err:
        _envelope(**{field: datetime(2026, 11, 28, 9, 30)})
    assert "time zone" in str(err.value)


def test_naive_timestamp_in_json_is_refused():
    doc = _envelope().model_dump(mode="json")
    doc["occurred_at"] = "2026-11-28T09:30:00"
    with pytest.raises(ValidationError, match="time zone"):
        Envelope.model_validate(doc)


def test_round_trip_through_bytes_is_exact():
    env = _envelope(causation_id=new_event_id(), correlation_id=new_event_id())
    data = env.to_bytes()
    back = Envelope.from_bytes(data)
    assert back == env
    assert back.to_bytes() == data
    assert back.occurred_at.utcoffset() == timedelta(hours=8)


def test_unknown_envelope_fields_are_refused():
    doc = _envelope().model_dump(mode="json")
    doc["patient_name"] = "x"
    with pytest.raises(ValidationError, match="patient_name"):
        Envelope.model_validate(doc)


def test_envelope_is_immutable():
    env = _envelope()
    with pytest.raises(ValidationError):
        env.key = "other"


def test_caused_links_causation_and_correlation():
    first = _envelope()
    follow = first.caused()
    assert follow["causation_id"] == first.event_id
    assert follow["correlation_id"] == first.event_id
    second = _envelope(**follow)
    assert second.caused()["correlation_id"] == first.event_id
    assert second.caused()["causation_id"] == second.event_id
