"""The log port: what every backend offers, and nothing more.

Topics are split into a fixed number of partitions; a record's partition is chosen from its key with the same
function on every backend (:func:`partition_for`), so the same events land in the same partitions whichever log
holds them. Within a partition, offsets start at 0 and grow by one per record.
"""
from __future__ import annotations

import zlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Iterable, Sequence

from schemas.envelope import Envelope


def partition_for(key: str, partitions: int) -> int:
    return zlib.crc32(key.encode()) % partitions


def positions_after(records: Iterable["LogRecord"]) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset after the last of ``records``: what a commit of them stores."""
    out: dict[tuple[str, int], int] = {}
    for r in records:
        tp = (r.topic, r.partition)
        out[tp] = max(out.get(tp, 0), r.offset + 1)
    return out


@dataclass(frozen=True)
class Position:
    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class LogRecord:
    topic: str
    partition: int
    offset: int
    key: str
    event_id: str
    value: bytes

    @property
    def position(self) -> Position:
        return Position(self.topic, self.partition, self.offset)

    def envelope(self) -> Envelope:
        return Envelope.from_bytes(self.value)


class Consumer(ABC):
    """A member of a consumer group. Positions are committed only when the caller says the work is done."""

    @abstractmethod
    def poll(self, max_records: int = 500, timeout: float = 1.0) -> list[LogRecord]:
        """Records after the group's committed positions (or after the last poll), in order per partition."""

    @abstractmethod
    def commit(self, records: Sequence[LogRecord] | None = None) -> None:
        """Commit past the given records (default: everything polled so far)."""

    @abstractmethod
    def seek(self, position: Position) -> None:
        """Continue from ``position`` (the next record read has this offset)."""

    @abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> "Consumer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class EventLog(ABC):
    """An append-only, partitioned log of envelopes."""

    @abstractmethod
    def create_topic(self, topic: str, partitions: int) -> None:
        """Create the topic if missing (idempotent)."""

    @abstractmethod
    def partitions(self, topic: str) -> int: ...

    @abstractmethod
    def append(self, topic: str, envelopes: Sequence[Envelope]) -> list[Position]:
        """Append in order; durable when this returns. An ``event_id`` already appended is not appended again
        (its existing position is returned)."""

    @abstractmethod
    def read(self, topic: str, partition: int, offset: int, limit: int = 1000) -> list[LogRecord]:
        """Records of one partition from ``offset`` on, at most ``limit``."""

    @abstractmethod
    def end_offsets(self, topic: str) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""

    @abstractmethod
    def consumer(self, group: str, topics: Iterable[str]) -> Consumer: ...

    @abstractmethod
    def committed(self, group: str, topic: str) -> dict[int, int]:
        """Per partition, the group's committed position (next offset to read); missing means none."""

    def close(self) -> None:
        pass

    def __enter__(self) -> "EventLog":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def count(self, topic: str) -> int:
        return sum(self.end_offsets(topic).values())
