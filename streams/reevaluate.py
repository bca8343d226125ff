"""Re-evaluate past duplicate checks and decisions under another rule file, by replaying the log.

The live views keep what doctors were shown under the rules in force at the time (the ``DuplicateFound`` events
on the log). A regulator who changes the rules, or an auditor who doubts them, asks a different question: *under
these rules, which earlier exams would have been offered, and is each 已互认 still justified?* This replays the
person topic through a fresh :class:`Recognition` bound to the given rules, leaving out the logged
``DuplicateFound`` events (they carry the old rules' answers) but keeping the doctors' decisions, and compares the
result with the live view. Nothing is written to the log or the views.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterator

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas.recognition_rules import RuleSet
from schemas.registry import REGISTRY, SchemaError
from streams.log.port import EventLog
from streams.processors.recognition import Recognition, order_items

TOPIC = "person"
COLUMNS = ("hospital", "order_id", "standard_item", "ordered_at", "old_rule_version", "new_rule_version",
           "old_candidates", "new_candidates", "decision", "accepted_study_uid", "accepted_still_valid", "changed")


@dataclass(frozen=True)
class ItemReview:
    """One ordered standard item, as the views hold it and as the given rules would decide it."""

    hospital: str
    order_id: str
    standard_item: str
    ordered_at: str | None
    old_rule_version: str | None
    new_rule_version: str | None
    old_candidates: int
    new_candidates: int
    decision: str  # accepted | declined | none (the doctor's last answer for the item)
    accepted_study_uid: str | None
    accepted_still_valid: bool | None  # None when nothing was accepted

    @property
    def changed(self) -> bool:
        return (self.old_candidates != self.new_candidates or self.accepted_still_valid is False
                or self.old_rule_version != self.new_rule_version)

    def as_row(self) -> dict[str, object]:
        valid = {None: "", True: "yes", False: "no"}[self.accepted_still_valid]
        return {c: getattr(self, c) for c in COLUMNS[:-2]} | {"accepted_still_valid": valid,
                                                               "changed": "yes" if self.changed else "no"}


def reevaluate(log: EventLog, rules: RuleSet, views: Engine, batch: int = 5000) -> Iterator[ItemReview]:
    """Every ordered item on the log, one partition at a time (a person's events live in one partition)."""
    recognition = Recognition(rules)
    for partition, end in sorted(log.end_offsets(TOPIC).items()):
        states: dict[str, dict] = {}
        offset = 0
        while offset < end:
            records = log.read(TOPIC, partition, offset, batch)
            if not records:
                break
            for record in records:
                try:
                    event = REGISTRY.parse_bytes(record.value)
                except SchemaError:
                    continue  # set aside by the projector as a rejected record; it decides nothing here either
                if event.type not in recognition.handles or event.type == "DuplicateFound":
                    continue
                key = recognition.state_key(event)
                if key is not None:
                    states[key] = recognition.evolve(states.get(key) or recognition.initial(), event)
            offset = records[-1].offset + 1
        yield from _compare(recognition, states, views)


def _compare(recognition: Recognition, states: dict[str, dict], views: Engine) -> Iterator[ItemReview]:
    live = _live_items(views, list(states))
    for key, state in sorted(states.items()):
        for row in recognition.rows(key, state)["order_items"]:
            was = live.get((key, row["hospital"], row["order_id"], row["standard_item"]), {})
            offered = {c["study_uid"] for c in json.loads(row["candidates"])}
            last = {d["candidate_study_uid"]: d["decision"] for d in json.loads(row["decisions"])}
            accepted = next((study for study, decision in last.items() if decision == "accepted"), None)
            yield ItemReview(
                hospital=row["hospital"], order_id=row["order_id"], standard_item=row["standard_item"],
                ordered_at=row["ordered_at"], old_rule_version=was.get("rule_version"),
                new_rule_version=row["rule_version"], old_candidates=was.get("candidate_count", 0),
                new_candidates=len(offered), decision="accepted" if accepted else ("declined" if last else "none"),
                accepted_study_uid=accepted, accepted_still_valid=None if accepted is None else accepted in offered)


def _live_items(views: Engine, person_keys: list[str]) -> dict[tuple[str, str, str, str], dict]:
    """The live view's rule version and candidate count per item of these persons."""
    out: dict[tuple[str, str, str, str], dict] = {}
    with views.connect() as conn:
        for start in range(0, len(person_keys), 500):
            chunk = person_keys[start:start + 500]
            for r in conn.execute(sa.select(order_items.c.person_key, order_items.c.hospital, order_items.c.order_id,
                                            order_items.c.standard_item, order_items.c.rule_version,
                                            order_items.c.candidate_count)
                                  .where(order_items.c.person_key.in_(chunk))).mappings():
                out[(r["person_key"], r["hospital"], r["order_id"], r["standard_item"])] = dict(r)
    return out
