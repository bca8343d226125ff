"""What a processor is.

A processor keeps one JSON-able state per *state key* (usually the event's partition key). Both runtimes feed it
the same events in the same per-partition order, store its state, and write the rows it derives from that state
into its view tables; the processor itself never touches a database or the log.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

import sqlalchemy as sa

from schemas.envelope import Envelope

S = TypeVar("S")


@dataclass(frozen=True)
class ViewTable:
    """A read-model table a processor owns, and the columns that identify one state key's rows."""

    table: sa.Table
    key_columns: tuple[str, ...]


class Processor(ABC, Generic[S]):
    name: ClassVar[str]
    handles: ClassVar[frozenset[str]]
    views: ClassVar[tuple[ViewTable, ...]] = ()
    #: Bump it when the state this processor keeps or the rows it renders change for the same events. The projector
    #: writes only the rows that differ from those of the stored state, so views built by another version would keep
    #: stale rows: it refuses to apply to them until they are rebuilt (``wanying views rebuild``).
    version: ClassVar[int] = 1

    def state_key(self, event: Envelope) -> str | None:
        """Which state this event belongs to; ``None`` to ignore it."""
        return event.key

    @abstractmethod
    def initial(self) -> S: ...

    @abstractmethod
    def evolve(self, state: S, event: Envelope) -> S: ...

    def decide(self, state: S, event: Envelope) -> list[Envelope]:
        """New events caused by ``event`` given the state before it. Most projections decide nothing."""
        return []

    def rows(self, key: str, state: S) -> dict[str, list[dict[str, Any]]]:
        """The view rows of one state key, by table name; they replace that key's previous rows."""
        return {}

    def key_values(self, key: str) -> dict[str, Any]:
        """Column values that select one state key's rows in every view table of this processor."""
        return {self.views[0].key_columns[0]: key}
