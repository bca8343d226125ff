"""Event envelope, event catalog and policy catalogs of Wanying.

Everything that happens is an :class:`~schemas.envelope.Envelope` whose payload is one of the
models registered in :mod:`schemas.events`.
"""
from schemas.envelope import Envelope, new_event_id
from schemas.registry import REGISTRY, EventRegistry, SchemaError
from schemas import events as events  # noqa: E402  registers the catalog
from schemas import upcasters as upcasters  # noqa: E402

__all__ = ["Envelope", "new_event_id", "REGISTRY", "EventRegistry", "SchemaError"]
