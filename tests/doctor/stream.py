"""Event builders for doctor-side tests: exams at given local times, items, QC grades, decisions."""
from __future__ import annotations

import hashlib
from datetime import date, datetime, time, timedelta

from pipelines.identity import PlainPerson, protect
from schemas import REGISTRY, Envelope
from schemas import events as ev
from tests.unit.exam_stream import CST, StreamBuilder

# Demo directory (schemas/catalogs/hospitals.yaml): levels and alliances the rules look at.
HF1 = "AH-HF-001"  # 三级甲等, 合肥一院医联体
HF2 = "AH-HF-002"  # 三级甲等, no alliance
HF3 = "AH-HF-003"  # 二级甲等, 合肥一院医联体
HF4 = "AH-HF-004"  # 一级, 合肥一院医联体
WH1 = "AH-WH-001"  # 三级甲等
WH2 = "AH-WH-002"  # 三级乙等
AQ2 = "AH-AQ-002"  # 二级乙等, 安庆市立医院医联体
NOWHERE = "AH-XX-999"  # not in the directory

CT_CHEST = "CT-CHEST-P"


def local(day: date, hour: int = 10, minute: int = 0) -> datetime:
    return datetime.combine(day, time(hour, minute), CST)


class DoctorStream(StreamBuilder):
    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.n = 0

    def _at(self, payload, key: str, at: datetime) -> Envelope:
        self.clock = at
        env = REGISTRY.new(payload, key=key, source=getattr(payload, "hospital", "wanying"), occurred_at=at)
        self.events.append(env)
        return env

    def visit_born(self, pk: str, hospital: str, visit_id: str, birth_year: int, at: datetime,
                   doctor: str = "D1") -> Envelope:
        _, person = protect(PlainPerson(name="王小明", hospital_patient_id=f"MRN-{visit_id}"), hospital, self.keys)
        person = person.model_copy(update={"birth_year": birth_year})
        return self._at(ev.VisitStarted(hospital=hospital, visit_id=visit_id, person_key=pk, person=person,
                                        patient_class="outpatient", department="儿科", doctor_id=doctor), pk, at)

    def order_at(self, pk: str, hospital: str, order_id: str, at: datetime, *, name: str = "胸部CT平扫",
                 modality: str = "CT", patient_class: str = "outpatient", doctor: str = "D1") -> Envelope:
        return self._at(ev.ExamOrdered(hospital=hospital, order_id=order_id, person_key=pk, local_item_code="X1",
                                       local_item_name=name, modality=modality, patient_class=patient_class,
                                       doctor_id=doctor), pk, at)

    def items(self, order: Envelope, *items: str, at: datetime | None = None) -> Envelope:
        p = order.payload
        return self._at(ev.ExamItemsResolved(hospital=p["hospital"], person_key=p["person_key"],
                                             order_id=p["order_id"], standard_items=list(items or (CT_CHEST,)),
                                             catalog_version="test", method="manual"), order.key,
                        at or order.occurred_at + timedelta(seconds=1))

    def checked_order(self, pk: str, hospital: str, order_id: str, at: datetime, *items: str,
                      patient_class: str = "outpatient", doctor: str = "D1") -> Envelope:
        order = self.order_at(pk, hospital, order_id, at, patient_class=patient_class, doctor=doctor)
        self.items(order, *items)
        return order

    def exam(self, pk: str, hospital: str, day: date, *items: str, modality: str = "CT", report: str = "final",
             qc: tuple[str, ...] = (), cancel: bool = False) -> str:
        """An earlier exam taken on local ``day``: order, items, study, report (none/final/amended), QC grades.
        Returns its study UID (or the order id when cancelled)."""
        self.n += 1
        order_id, uid = f"E{self.n}", f"1.2.826.0.1.{self.n}"
        order = self.order_at(pk, hospital, order_id, local(day, 8), modality=modality)
        self.items(order, *items)
        if cancel:
            self._at(ev.ExamCancelled(hospital=hospital, order_id=order_id, person_key=pk), pk, local(day, 8, 30))
            return order_id
        summaries = [ev.SeriesSummary(series_uid=f"{uid}.{i + 1}", modality=modality, instance_count=10)
                     for i in range(max(1, len(qc)))]
        self._at(ev.StudyCompleted(hospital=hospital, study_uid=uid, person_key=pk, order_id=order_id, study_date=day,
                                   modalities=[modality], series=summaries, instance_count=10 * len(summaries),
                                   total_bytes=1000, manifest_sha256=hashlib.sha256(uid.encode()).hexdigest()),
                 pk, local(day, 9))
        for s, grade in zip(summaries, qc):
            self._at(ev.QCScored(study_uid=uid, series_uid=s.series_uid, person_key=pk, hospital=hospital,
                                 protocol="CT-CHEST", protocol_version="1", scores={"clarity": 90.0}, total=90,
                                 grade=grade), pk, local(day, 9, 30))
        if report != "none":
            self.clock = local(day, 10)
            self.report(pk, hospital, f"R{self.n}", study_uid=uid)
            if report == "amended":
                self.amend(pk, hospital, f"R{self.n}")
        return uid

    def decision(self, pk: str, hospital: str, order_id: str, item: str, study_uid: str, decision: str,
                 reason: str | None = None, text: str | None = None, at: datetime | None = None,
                 doctor: str = "D1") -> Envelope:
        return self._at(ev.RecognitionDecided(hospital=hospital, order_id=order_id, person_key=pk,
                                              standard_item=item, candidate_study_uid=study_uid, doctor_id=doctor,
                                              decision=decision, reason_code=reason,
                                              reason_text=self.keys.encrypt(text, context="reason_text")
                                              if text else None),
                        pk, at or self.clock + timedelta(minutes=3))

    def opened_at(self, pk: str, hospital: str, at: datetime, doctor: str = "D1") -> Envelope:
        return self._at(ev.PatientOpened(hospital=hospital, doctor_id=doctor, person_key=pk), pk, at)
