"""Run processors the way a runtime does, without one: per state key, in order, state stored as JSON between
events, and every decided event fed back after the event that caused it (as if appended to the log)."""
from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field

import sqlalchemy as sa

from schemas.envelope import Envelope
from schemas.registry import REGISTRY
from streams.processors.base import Processor


@dataclass
class Run:
    processors: list[Processor]
    states: dict[str, dict] = field(default_factory=dict)
    log: list[Envelope] = field(default_factory=list)
    decided: list[Envelope] = field(default_factory=list)
    #: "next": a decided event is read right after its cause (events hours apart); "end": after everything fed
    #: so far (all in one runtime batch, the decided events appended behind it).
    feedback: str = "next"

    def feed(self, events: list[Envelope]) -> list[Envelope]:
        """Apply ``events`` and everything they cause; returns the events decided on the way."""
        seen = {e.event_id for e in self.log}
        queue, out = deque(events), []
        while queue:
            event = REGISTRY.validate(queue.popleft())
            if event.event_id in seen:  # the log keeps one copy of an id
                continue
            seen.add(event.event_id)
            self.log.append(event)
            for proc in self.processors:
                if event.type not in proc.handles or (key := proc.state_key(event)) is None:
                    continue
                states = self.states.setdefault(proc.name, {})
                state = json.loads(states[key]) if key in states else proc.initial()
                new = proc.decide(json.loads(json.dumps(state)), event)
                states[key] = json.dumps(proc.evolve(state, event))
                out.extend(new)
                if self.feedback == "next":
                    queue.extendleft(reversed(new))
                else:
                    queue.extend(new)
        self.decided.extend(out)
        return out

    def state(self, proc: Processor, key: str) -> dict:
        return json.loads(self.states[proc.name][key])

    def rows(self, proc: Processor, table: str) -> list[dict]:
        return [r for key, s in sorted(self.states.get(proc.name, {}).items())
                for r in proc.rows(key, json.loads(s)).get(table, [])]

    def of(self, type_: str) -> list[Envelope]:
        return [e for e in self.decided if e.type == type_]

    def statistics(self, **filters) -> tuple[list[dict], list[dict]]:
        """The recognition statistics of this run's outcome rows, summed by the same SQL as the API's."""
        from streams.processors.recognition import (RecognitionStats, recognition_outcome_reasons,
                                                    recognition_outcomes, recognition_statistics)

        engine = sa.create_engine("sqlite://")
        tables = (recognition_outcomes, recognition_outcome_reasons)
        tables[0].metadata.create_all(engine, tables=list(tables))
        with engine.begin() as conn:
            for table in tables:
                if rows := self.rows(RecognitionStats(), table.name):
                    conn.execute(table.insert(), rows)
            return recognition_statistics(conn, **filters)
