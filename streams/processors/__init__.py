"""Pure processors: ``evolve(state, event) -> state`` and ``decide(state, event) -> events``. No I/O here."""
from streams.processors.base import Processor, ViewTable
from streams.processors.daily_counts import HospitalDailyCounts
from streams.processors.history import ExamHistory

ALL: tuple[type[Processor], ...] = (ExamHistory, HospitalDailyCounts)

__all__ = ["Processor", "ViewTable", "ExamHistory", "HospitalDailyCounts", "ALL"]
