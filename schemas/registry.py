"""Which payload model belongs to which event type and version, and how old versions are upcast."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Iterator, TypeVar

from pydantic import BaseModel, ValidationError

from schemas.envelope import Envelope

M = TypeVar("M", bound=type[BaseModel])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


class SchemaError(ValueError):
    """An event that does not fit the catalog; ``reason`` says what the sender must fix."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class EventType:
    name: str
    version: int
    topic: str
    model: type[BaseModel]


class EventRegistry:
    def __init__(self) -> None:
        self._current: dict[str, EventType] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}

    def register(self, name: str, *, topic: str, version: int = 1) -> Callable[[M], M]:
        def decorate(model: M) -> M:
            if name in self._current:
                raise ValueError(f"event type {name} registered twice")
            self._current[name] = EventType(name, version, topic, model)
            return model

        return decorate

    def upcaster(self, name: str, from_version: int) -> Callable[[Upcaster], Upcaster]:
        """Register a function that turns payload version ``from_version`` into ``from_version + 1``."""

        def decorate(fn: Upcaster) -> Upcaster:
            self._upcasters[(name, from_version)] = fn
            return fn

        return decorate

    def __iter__(self) -> Iterator[EventType]:
        return iter(sorted(self._current.values(), key=lambda t: t.name))

    def __getitem__(self, name: str) -> EventType:
        try:
            return self._current[name]
        except KeyError:
            raise SchemaError(f"unknown event type {name!r}; known types: {', '.join(sorted(self._current))}") from None

    def topics(self) -> list[str]:
        return sorted({t.topic for t in self._current.values()})

    def topic_of(self, name: str) -> str:
        return self[name].topic

    def upcast(self, envelope: Envelope) -> Envelope:
        """Bring an envelope's payload to the current version of its type."""
        current = self[envelope.type]
        version, payload = envelope.schema_version, envelope.payload
        if version > current.version:
            raise SchemaError(f"{envelope.type} version {version} is newer than this reader ({current.version})")
        while version < current.version:
            step = self._upcasters.get((envelope.type, version))
            if step is None:
                raise SchemaError(f"no upcaster for {envelope.type} from version {version}")
            try:
                payload = step(dict(payload))
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                raise SchemaError(
                    f"{envelope.type} version {version} payload cannot be upgraded: {exc}"
                ) from None
            version += 1
        if version == envelope.schema_version:
            return envelope
        return envelope.model_copy(update={"payload": payload, "schema_version": version})

    def validate(self, envelope: Envelope) -> Envelope:
        """Upcast, then check the payload against its model. Returns the (possibly upcast) envelope."""
        envelope = self.upcast(envelope)
        model = self[envelope.type].model
        try:
            model.model_validate(envelope.payload)
        except ValidationError as exc:
            raise SchemaError(f"{envelope.type} payload invalid: {_explain(exc)}") from None
        return envelope

    def parse_bytes(self, data: bytes) -> Envelope:
        """Parse and validate an envelope from JSON bytes, with a reason the sender can act on if it fails."""
        try:
            envelope = Envelope.from_bytes(data)
        except ValidationError as exc:
            raise SchemaError(f"envelope invalid: {_explain(exc)}") from None
        return self.validate(envelope)

    def payload(self, envelope: Envelope) -> BaseModel:
        return self[envelope.type].model.model_validate(self.upcast(envelope).payload)

    def new(
        self,
        payload: BaseModel,
        *,
        key: str,
        source: str,
        occurred_at: datetime,
        **envelope_fields: Any,
    ) -> Envelope:
        """Wrap a payload model in an envelope at its type's current version."""
        matches = [t for t in self._current.values() if t.model is type(payload)]
        if not matches:
            raise SchemaError(f"{type(payload).__name__} is not a registered event payload")
        etype = matches[0]
        return Envelope(
            type=etype.name,
            schema_version=etype.version,
            occurred_at=occurred_at,
            source=source,
            key=key,
            payload=payload.model_dump(mode="json", exclude_none=True),
            **envelope_fields,
        )


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        parts.append(f"{where}: {err['msg']}")
    more = len(exc.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


REGISTRY = EventRegistry()
