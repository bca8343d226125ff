"""Builders for realistic event streams (orders, studies, reports, links), shared by processor and view tests."""
from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

from pipelines.crypto import Keyring
from pipelines.identity import PlainPerson, check_digit, protect
from schemas import REGISTRY, Envelope
from schemas import events as ev

CST = timezone(timedelta(hours=8))


class StreamBuilder:
    """Makes valid envelopes with a moving clock (local time, +08:00)."""

    def __init__(self, keys: Keyring | None = None, start: datetime | None = None) -> None:
        self.keys = keys or Keyring.generate()
        self.clock = start or datetime(2026, 11, 27, 8, 0, tzinfo=CST)
        self.events: list[Envelope] = []

    def at(self, when: datetime) -> "StreamBuilder":
        self.clock = when
        return self

    def _emit(self, payload, key: str, minutes: int = 5) -> Envelope:
        self.clock += timedelta(minutes=minutes)
        env = REGISTRY.new(payload, key=key, source=getattr(payload, "hospital", "wanying"), occurred_at=self.clock)
        self.events.append(env)
        return env

    def person(self, first17: str, hospital: str = "AH-HF-001") -> str:
        """The partition key of the person whose ID number starts with ``first17``."""
        key, _ = protect(PlainPerson(id_number=first17 + check_digit(first17)), hospital, self.keys)
        return key

    def local_person(self, hospital: str, mrn: str) -> str:
        return self.keys.hospital_person_key(hospital, mrn)

    def visit(self, pk: str, hospital: str, visit_id: str, name: str = "王小明") -> Envelope:
        _, person = protect(PlainPerson(name=name, hospital_patient_id=f"MRN-{visit_id}"), hospital, self.keys)
        return self._emit(ev.VisitStarted(hospital=hospital, visit_id=visit_id, person_key=pk, person=person,
                                          patient_class="outpatient", department="呼吸内科"), pk)

    def order(self, pk: str, hospital: str, order_id: str, code: str = "CT01", name: str = "胸部CT平扫",
              modality: str = "CT", accession: str | None = None) -> Envelope:
        return self._emit(ev.ExamOrdered(hospital=hospital, order_id=order_id, person_key=pk, local_item_code=code,
                                         local_item_name=name, modality=modality, accession_number=accession), pk)

    def cancel(self, pk: str, hospital: str, order_id: str) -> Envelope:
        return self._emit(ev.ExamCancelled(hospital=hospital, order_id=order_id, person_key=pk, reason="患者取消"), pk)

    def received(self, pk: str, hospital: str, study_uid: str, accession: str | None = None,
                 modality: str = "CT") -> Envelope:
        return self._emit(ev.StudyReceived(hospital=hospital, study_uid=study_uid, person_key=pk,
                                           accession_number=accession, modality=modality,
                                           study_date=self.clock.date()), pk)

    def completed(self, pk: str, hospital: str, study_uid: str, accession: str | None = None,
                  order_id: str | None = None, modalities: tuple[str, ...] = ("CT",), series: int = 2,
                  per_series: int = 40) -> Envelope:
        summaries = [ev.SeriesSummary(series_uid=f"{study_uid}.{i + 1}", modality=modalities[0],
                                      instance_count=per_series) for i in range(series)]
        return self._emit(ev.StudyCompleted(
            hospital=hospital, study_uid=study_uid, person_key=pk, accession_number=accession, order_id=order_id,
            study_date=self.clock.date(), modalities=list(modalities), description="胸部平扫", series=summaries,
            instance_count=series * per_series, total_bytes=series * per_series * 525_000,
            manifest_sha256=hashlib.sha256(study_uid.encode()).hexdigest()), pk)

    def report(self, pk: str, hospital: str, report_id: str, study_uid: str | None = None,
               accession: str | None = None) -> Envelope:
        return self._emit(ev.ReportFinalized(
            hospital=hospital, report_id=report_id, person_key=pk, study_uid=study_uid, accession_number=accession,
            findings=self.keys.encrypt("两肺纹理清晰", context="findings"),
            impression=self.keys.encrypt("胸部CT未见明显异常", context="impression"),
            author_id="R7", signed_at=self.clock + timedelta(minutes=5)), pk)

    def amend(self, pk: str, hospital: str, report_id: str) -> Envelope:
        return self._emit(ev.ReportAmended(
            hospital=hospital, report_id=report_id, person_key=pk,
            findings=self.keys.encrypt("右肺下叶小结节", context="findings"),
            impression=self.keys.encrypt("右肺下叶小结节, 建议随访", context="impression"),
            author_id="R7", signed_at=self.clock + timedelta(minutes=5), reason="漏诊结节"), pk)

    def link(self, pk: str, linked: str, hospital: str) -> Envelope:
        return self._emit(ev.PatientLinked(person_key=pk, linked_key=linked, hospital=hospital,
                                           method="id_number"), pk)

    def opened(self, pk: str, hospital: str, doctor: str = "D1") -> Envelope:
        return self._emit(ev.PatientOpened(hospital=hospital, doctor_id=doctor, person_key=pk), pk)


HF, WH = "AH-HF-001", "AH-WH-002"


def realistic_stream(b: StreamBuilder) -> dict[str, str]:
    """Two hospitals, three people, every join path; returns the person keys by role in the story.

    - A: ordered at HF, imaged, reported (joined by accession), report amended; a second order at HF cancelled;
      a study at WH with no order, reported by study UID; a late report at 23:50 local (next day in UTC terms).
    - B: ordered at WH, report arrives before the study is complete (joined by study UID).
    - C: known only to HF by MRN, later linked to an ID-number key.
    """
    a = b.person("11010519491231002")
    bb = b.person("34010419850612123")
    c_local = b.local_person(HF, "MRN-77")
    c = b.person("34010219900101002")

    b.visit(a, HF, "V1")
    b.order(a, HF, "O1", accession="ACC1")
    b.received(a, HF, "1.2.840.1.1", accession="ACC1")
    b.completed(a, HF, "1.2.840.1.1", accession="ACC1")
    b.report(a, HF, "R1", accession="ACC1")
    b.order(a, HF, "O2", code="MR03", name="头颅MR平扫", modality="MR")
    b.cancel(a, HF, "O2")
    b.amend(a, HF, "R1")
    b.received(a, WH, "1.2.840.2.9", modality="CT")  # same person, other hospital, no order
    b.completed(a, WH, "1.2.840.2.9", series=3, per_series=10)
    b.at(datetime(2026, 11, 27, 23, 40, tzinfo=CST))
    b.report(a, WH, "WR9", study_uid="1.2.840.2.9")

    b.order(bb, WH, "WO5", code="DX01", name="胸部正位", modality="DX", accession="WACC5")
    b.received(bb, WH, "1.2.840.2.5", accession="WACC5", modality="DX")
    b.report(bb, WH, "WR5", study_uid="1.2.840.2.5")
    b.completed(bb, WH, "1.2.840.2.5", accession="WACC5", modalities=("DX",), series=1, per_series=1)

    b.order(c_local, HF, "O9", code="US02", name="腹部彩超", modality="US")
    b.completed(c_local, HF, "1.2.840.1.9", order_id="O9", modalities=("US",), series=1, per_series=12)
    b.link(c, c_local, HF)
    b.opened(c, HF)
    return {"a": a, "b": bb, "c": c, "c_local": c_local}
