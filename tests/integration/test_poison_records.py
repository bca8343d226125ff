"""A record on the log that is not a valid event is set aside with its bytes; the views move past it."""
from __future__ import annotations

from datetime import datetime, timezone

from schemas.events import ExamOrdered
from schemas.registry import REGISTRY
from streams.log.port import LogRecord
from streams.processors import ALL
from streams.views.projector import Projector, rejected_records
from wanying.wiring import make_engine

KEY = "a" * 64


def _valid(offset: int) -> LogRecord:
    event = REGISTRY.new(
        ExamOrdered(hospital="AH-HF-001", order_id=f"O{offset}", person_key=KEY, local_item_code="CT01",
                    local_item_name="胸部CT平扫"),
        key=KEY, source="AH-HF-001", occurred_at=datetime(2026, 11, 1, tzinfo=timezone.utc))
    return LogRecord("person", 3, offset, KEY, str(event.event_id), event.to_bytes())


def test_garbage_and_unknown_types_are_set_aside_and_do_not_block(tmp_path):
    projector = Projector(make_engine(f"sqlite:///{tmp_path / 'views.sqlite'}"), [p() for p in ALL])
    projector.create()
    unknown_type = _valid(1).value.replace(b'"ExamOrdered"', b'"ExamTeleported"')
    bad_payload = _valid(2).value.replace(b'"local_item_code":"CT01",', b"")
    records = [
        _valid(0),
        LogRecord("person", 3, 1, KEY, "x", unknown_type),
        LogRecord("person", 3, 2, KEY, "y", bad_payload),
        LogRecord("person", 3, 3, KEY, "z", b"\xff\xfenot json"),
        _valid(4),
    ]
    result = projector.apply(records)
    assert (result.applied, result.rejected) == (2, 3)
    assert projector.positions()[("person", 3)] == 5
    rejects = {r["offset"]: r["reason"] for r in projector.rejects()}
    assert set(rejects) == {1, 2, 3}
    assert "ExamTeleported" in rejects[1] and "local_item_code" in rejects[2]
    with projector.engine.connect() as conn:
        kept = dict(conn.execute(rejected_records.select().with_only_columns(
            rejected_records.c.offset, rejected_records.c.value)).all())
    assert kept[3] == b"\xff\xfenot json" and kept[1] == unknown_type
    assert projector.count_rows()["exam_history"] == 2
