"""The event registry: unknown types, payload errors, upcasting, versions newer than the reader."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from schemas import REGISTRY, Envelope, SchemaError
from schemas.events import ExamOrdered

CST = timezone(timedelta(hours=8))
PK = "a" * 64


def _doc(type_: str, payload: dict, version: int = 1) -> dict:
    return {"type": type_, "schema_version": version, "occurred_at": "2026-11-28T09:30:00+08:00",
            "source": "AH-HF-001", "key": PK, "payload": payload}


def _bytes(doc: dict) -> bytes:
    return json.dumps(doc).encode()


ORDER_V2 = {"hospital": "AH-HF-001", "order_id": "O1", "person_key": PK, "local_item_code": "CT01",
            "local_item_name": "胸部CT平扫", "modality": "CT"}


def test_unknown_type_is_a_schema_error_that_lists_known_types():
    with pytest.raises(SchemaError) as err:
        REGISTRY.parse_bytes(_bytes(_doc("ExamOrderd", ORDER_V2, 2)))
    assert "unknown event type 'ExamOrderd'" in err.value.reason
    assert "ExamOrdered" in err.value.reason


def test_unknown_type_lookup_raises_schema_error_not_key_error():
    with pytest.raises(SchemaError):
        REGISTRY["NoSuchEvent"]


@pytest.mark.parametrize(
    "change, field",
    [
        ({"order_id": ""}, "order_id"),
        ({"person_key": "not-a-key"}, "person_key"),
        ({"hospital": "ah hf"}, "hospital"),
        ({"modality": "computed tomography"}, "modality"),
        ({"patient_class": "visitor"}, "patient_class"),
        ({"extra_field": 1}, "extra_field"),
    ],
)
def test_payload_errors_name_the_field(change, field):
    with pytest.raises(SchemaError) as err:
        REGISTRY.parse_bytes(_bytes(_doc("ExamOrdered", {**ORDER_V2, **change}, 2)))
    assert err.value.reason.startswith("ExamOrdered payload invalid")
    assert field in err.value.reason


def test_missing_required_payload_field_is_named():
    payload = dict(ORDER_V2)
    del payload["local_item_code"]
    with pytest.raises(SchemaError, match="local_item_code: Field required"):
        REGISTRY.parse_bytes(_bytes(_doc("ExamOrdered", payload, 2)))


def test_envelope_errors_name_the_field():
    doc = _doc("ExamOrdered", ORDER_V2, 2)
    del doc["source"]
    with pytest.raises(SchemaError, match="envelope invalid: source"):
        REGISTRY.parse_bytes(_bytes(doc))


def test_exam_ordered_v1_is_upcast_to_v2():
    v1 = {k: v for k, v in ORDER_V2.items() if not k.startswith("local_item")}
    v1["item"] = "CT01|胸部CT平扫"
    env = REGISTRY.parse_bytes(_bytes(_doc("ExamOrdered", v1, 1)))
    assert env.schema_version == 2
    assert env.payload["local_item_code"] == "CT01"
    assert env.payload["local_item_name"] == "胸部CT平扫"
    assert "item" not in env.payload
    model = REGISTRY.payload(Envelope.from_bytes(_bytes(_doc("ExamOrdered", v1, 1))))
    assert isinstance(model, ExamOrdered) and model.local_item_code == "CT01"


def test_v1_item_without_name_uses_the_code():
    v1 = {k: v for k, v in ORDER_V2.items() if not k.startswith("local_item")} | {"item": "CT01"}
    env = REGISTRY.parse_bytes(_bytes(_doc("ExamOrdered", v1, 1)))
    assert env.payload["local_item_name"] == "CT01"


def test_v1_without_item_is_a_schema_error_not_a_crash():
    v1 = {k: v for k, v in ORDER_V2.items() if not k.startswith("local_item")}
    with pytest.raises(SchemaError, match="item"):
        REGISTRY.parse_bytes(_bytes(_doc("ExamOrdered", v1, 1)))


def test_current_version_is_not_copied():
    env = Envelope.model_validate(_doc("ExamOrdered", ORDER_V2, 2))
    assert REGISTRY.upcast(env) is env


def test_version_newer_than_the_reader_is_refused():
    with pytest.raises(SchemaError, match="version 3 is newer than this reader"):
        REGISTRY.parse_bytes(_bytes(_doc("ExamOrdered", ORDER_V2, 3)))


def test_new_wraps_a_payload_at_its_current_version():
    env = REGISTRY.new(ExamOrdered(**ORDER_V2), key=PK, source="AH-HF-001",
                       occurred_at=datetime(2026, 11, 28, tzinfo=CST))
    assert (env.type, env.schema_version) == ("ExamOrdered", 2)
    assert REGISTRY.validate(env) is env
    assert REGISTRY.topic_of("ExamOrdered") == "person"


def test_every_registered_type_has_a_topic_and_a_docstring():
    for etype in REGISTRY:
        assert etype.topic in REGISTRY.topics()
        assert etype.model.__doc__ and etype.model.__doc__.strip(), etype.name


DECISION_V1 = {"hospital": "AH-HF-001", "order_id": "O1", "person_key": PK, "standard_item": "CT-CHEST-P",
               "candidate_study_uid": "1.2.3", "doctor_id": "D1", "decision": "declined", "reason_code": "other"}


def test_recognition_decided_v1_without_text_is_upcast():
    env = REGISTRY.parse_bytes(_bytes(_doc("RecognitionDecided", DECISION_V1, 1)))
    assert (env.schema_version, env.payload["reason_text"], env.payload["reason_code"]) == (2, None, "other")


def test_recognition_decided_v1_with_clear_text_is_refused_not_carried_on():
    with pytest.raises(SchemaError, match="reason_text in clear"):
        REGISTRY.parse_bytes(_bytes(_doc("RecognitionDecided", DECISION_V1 | {"reason_text": "患者要求复查"}, 1)))


def test_recognition_decided_v2_refuses_clear_text():
    with pytest.raises(SchemaError, match="reason_text"):
        REGISTRY.parse_bytes(_bytes(_doc("RecognitionDecided", DECISION_V1 | {"reason_text": "患者要求复查"}, 2)))
