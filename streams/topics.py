"""Topics and their partition counts. Changing a count moves keys between partitions: plan a migration."""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Sequence

from schemas.envelope import Envelope
from schemas.registry import REGISTRY
from streams.log.port import EventLog, Position

PARTITIONS: dict[str, int] = {"person": 16, "directory": 4, "storage": 8}


def create_topics(log: EventLog) -> None:
    for topic in REGISTRY.topics():
        log.create_topic(topic, PARTITIONS[topic])


def publish(log: EventLog, envelopes: Iterable[Envelope]) -> list[Position]:
    """Append envelopes to their types' topics, keeping the given order within each topic."""
    by_topic: dict[str, list[Envelope]] = defaultdict(list)
    for e in envelopes:
        by_topic[REGISTRY.topic_of(e.type)].append(e)
    out: list[Position] = []
    for topic, batch in by_topic.items():
        out.extend(log.append(topic, batch))
    return out


def all_topics() -> Sequence[str]:
    return REGISTRY.topics()
