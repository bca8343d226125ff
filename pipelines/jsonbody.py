"""Reading a JSON request body the same way on every JSON channel: size limit first, then strict UTF-8 JSON."""
from __future__ import annotations

import json
from typing import Any


def load_json_body(body: bytes, limit: int) -> Any:
    """The parsed document, or ValueError with a reason the sender can act on."""
    if len(body) > limit:
        raise ValueError(f"body is {len(body)} bytes; the limit is {limit} (send smaller batches)")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"not valid UTF-8 JSON: {exc}") from None
