"""Pure processors: ``evolve(state, event) -> state`` and ``decide(state, event) -> events``. No I/O here."""
from schemas.recognition_rules import RuleSet
from streams.processors.base import Processor, ViewTable
from streams.processors.daily_counts import HospitalDailyCounts
from streams.processors.history import ExamHistory
from streams.processors.qc_views import QCScores, QCStats, QCStudies
from streams.processors.recognition import Recognition, RecognitionStats
from streams.processors.reminders import DoctorReminders, Reminders
from streams.processors.reports import ReportTexts

ALL: tuple[type[Processor], ...] = (ExamHistory, HospitalDailyCounts, Reminders, DoctorReminders, Recognition,
                                    RecognitionStats, QCStudies, QCScores, QCStats, ReportTexts)



def build_all(rules: RuleSet | None = None) -> list[Processor]:
    """One instance of every processor; the two that apply the recognition rules get ``rules`` (default: the
    packaged catalog)."""
    return [p(rules) if p in (Reminders, Recognition) else p() for p in ALL]


__all__ = ["Processor", "ViewTable", "ExamHistory", "HospitalDailyCounts", "Reminders", "DoctorReminders",
           "Recognition", "RecognitionStats", "QCStudies", "QCScores", "QCStats", "ReportTexts", "ALL", "build_all"]
