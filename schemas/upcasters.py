"""Upcasters: each turns a stored payload of one version into the next version of the same type."""
from __future__ import annotations

from typing import Any

from schemas.registry import REGISTRY


@REGISTRY.upcaster("ExamOrdered", from_version=1)
def exam_ordered_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 carried one ``item`` string "CODE|NAME"; v2 splits the hospital's code and name."""
    item = payload.pop("item", None)
    if not isinstance(item, str) or not item:
        raise ValueError("field 'item' (\"CODE|NAME\") is required in version 1")
    code, _, name = item.partition("|")
    payload["local_item_code"] = code
    payload["local_item_name"] = name or code
    return payload


@REGISTRY.upcaster("RecognitionDecided", from_version=1)
def recognition_decided_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """v1 kept the doctor's reason text in clear; v2 encrypts it. An upcaster holds no key, so a v1 decision with a
    text is refused (set aside with its bytes by the reader) rather than carried on in clear; one without a text
    is the same in both versions."""
    if payload.get("reason_text"):
        raise ValueError("version 1 carried reason_text in clear; re-send the decision so the text is encrypted")
    payload["reason_text"] = None
    return payload
