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
