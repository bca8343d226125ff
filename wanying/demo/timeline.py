"""The demo world as events, in the order they happened.

Event ids are UUIDv7 built from the event's own time and a random source seeded with the world's seed and the
event's logical identity (type, hospital, business id), so loading the same world twice yields the same ids and
the log keeps one copy. Personal data goes through :func:`pipelines.identity.protect` and report text through
``Keyring.encrypt(..., context="findings")``; ciphertexts differ between runs (fresh nonces), ids do not.
"""
from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Mapping

from pipelines.crypto import Keyring
from pipelines.identity import PlainPerson, protect
from schemas import events as ev
from schemas.envelope import Envelope, new_event_id
from schemas.registry import REGISTRY
from wanying.demo.dicom_writer import StudyFiles, manifest_sha256
from wanying.demo.model import Order, Patient, Visit, World

#: Timing of a study's arrival after it was performed, by modality (minutes): received, completed.
_ARRIVAL = {"CT": (3, 9), "MR": (4, 12), "DX": (1, 2), "CR": (2, 4)}


def event_id(seed: int, occurred_at: datetime, *identity: object) -> uuid.UUID:
    rng = random.Random("|".join(map(str, ("demo-event", seed, *identity))))
    return new_event_id(int(occurred_at.timestamp() * 1000), rng)


def plain_person(patient: Patient, visit: Visit) -> PlainPerson:
    if not visit.identified and patient.id_number is not None:  # brought in unidentified: nothing but the MRN
        return PlainPerson(sex=patient.sex, hospital_patient_id=visit.mrn)
    return PlainPerson(
        name=patient.name,
        id_number=patient.id_number if visit.identified else None,
        phone=patient.phone,
        sex=patient.sex,
        birth_date=patient.birth_date,
        hospital_patient_id=visit.mrn,
    )


class _Timeline:
    def __init__(self, world: World, keys: Keyring, files: Mapping[str, StudyFiles]):
        self.world, self.keys, self.files = world, keys, files
        self.out: list[Envelope] = []

    def add(self, payload, *, key: str, source: str, at: datetime, identity: tuple, cause: Envelope | None = None,
            correlation: uuid.UUID | None = None) -> Envelope:
        fields = {}
        if cause is not None:
            fields = {"causation_id": cause.event_id, "correlation_id": correlation or cause.event_id}
        env = REGISTRY.new(payload, key=key, source=source, occurred_at=at,
                           event_id=event_id(self.world.seed, at, type(payload).__name__, *identity), **fields)
        self.out.append(env)
        return env

    def _enc(self, text: str) -> str:
        return self.keys.encrypt(text, context="findings")

    def build(self) -> list[Envelope]:
        world = self.world
        signed_in: set[tuple[str, str, str]] = set()
        for visit in world.visits:
            patient = world.patient(visit.patient_key)
            person_key, person = protect(plain_person(patient, visit), visit.hospital, self.keys)
            self._sign_in(visit, signed_in)
            started = self.add(
                ev.VisitStarted(hospital=visit.hospital, visit_id=visit.visit_id, person_key=person_key, person=person,
                                patient_class=visit.patient_class, department=visit.department,
                                doctor_id=visit.doctor_id),
                key=person_key, source=visit.hospital, at=visit.started_at, identity=(visit.hospital, visit.visit_id))
            self.add(ev.PatientOpened(hospital=visit.hospital, doctor_id=visit.doctor_id, person_key=person_key,
                                      visit_id=visit.visit_id),
                     key=person_key, source=visit.hospital, at=visit.started_at + timedelta(minutes=2),
                     identity=(visit.hospital, visit.visit_id), cause=started)
            for order in visit.orders:
                self._order(visit, order, person_key, started)
        for link in world.links:
            patient = world.patient(link.patient_key)
            assert patient.id_number is not None
            national = protect(PlainPerson(id_number=patient.id_number), link.hospital, self.keys)[0]
            local = self.keys.hospital_person_key(link.hospital, link.mrn)
            self.add(ev.PatientLinked(person_key=national, linked_key=local, hospital=link.hospital,
                                      method=link.method),
                     key=national, source=link.hospital, at=link.at, identity=(link.hospital, link.mrn))
        self.out.sort(key=lambda e: (e.occurred_at, str(e.event_id)))
        return self.out

    def _sign_in(self, visit: Visit, done: set[tuple[str, str, str]]) -> None:
        day = visit.started_at.date().isoformat()
        if (visit.hospital, visit.doctor_id, day) in done:
            return
        done.add((visit.hospital, visit.doctor_id, day))
        rng = random.Random(f"sign-in|{self.world.seed}|{visit.hospital}|{visit.doctor_id}|{day}")
        at = visit.started_at - timedelta(minutes=rng.randint(3, 50))
        self.add(ev.DoctorSignedIn(hospital=visit.hospital, doctor_id=visit.doctor_id, department=visit.department,
                                   workstation=f"{visit.department}-{rng.randint(1, 6)}号诊室"),
                 key=visit.hospital, source=visit.hospital, at=at, identity=(visit.hospital, visit.doctor_id, day))

    def _order(self, visit: Visit, order: Order, person_key: str, started: Envelope) -> None:
        h = visit.hospital
        ordered = self.add(
            ev.ExamOrdered(hospital=h, order_id=order.order_id, person_key=person_key, visit_id=visit.visit_id,
                           local_item_code=order.local_code, local_item_name=order.local_name,
                           modality=order.modality, patient_class=visit.patient_class, doctor_id=order.doctor_id,
                           accession_number=order.accession),
            key=person_key, source=h, at=order.ordered_at, identity=(h, order.order_id), cause=started)
        chain = ordered.event_id
        if order.cancelled_at is not None:
            self.add(ev.ExamCancelled(hospital=h, order_id=order.order_id, person_key=person_key,
                                      reason=order.cancel_reason),
                     key=person_key, source=h, at=order.cancelled_at, identity=(h, order.order_id), cause=ordered,
                     correlation=chain)
            return
        study = order.study
        if study is None:
            return
        stored = self.files[study.uid]
        received_after, completed_after = _ARRIVAL[order.modality]
        received = self.add(
            ev.StudyReceived(hospital=h, study_uid=study.uid, person_key=person_key, accession_number=study.accession,
                             modality=order.modality, study_date=study.performed_at.date()),
            key=person_key, source=h, at=study.performed_at + timedelta(minutes=received_after),
            identity=(h, study.uid), cause=ordered, correlation=chain)
        series = [ev.SeriesSummary(series_uid=s.uid, modality=s.modality, body_part=s.body_part,
                                   description=s.description, instance_count=stored.instance_count(s.uid))
                  for s in study.series]
        completed = self.add(
            ev.StudyCompleted(hospital=h, study_uid=study.uid, person_key=person_key, accession_number=study.accession,
                              order_id=order.order_id, study_date=study.performed_at.date(),
                              modalities=[order.modality], description=study.description, series=series,
                              instance_count=len(stored.files), total_bytes=stored.total_bytes,
                              manifest_sha256=manifest_sha256(study.uid, h, stored.files)),
            key=person_key, source=h, at=study.performed_at + timedelta(minutes=completed_after),
            identity=(h, study.uid), cause=received, correlation=chain)
        report = order.report
        if report is None:
            return
        finalized = self.add(
            ev.ReportFinalized(hospital=h, report_id=report.report_id, person_key=person_key, study_uid=study.uid,
                               accession_number=study.accession, findings=self._enc(report.text.findings),
                               impression=self._enc(report.text.impression), author_id=report.author_id,
                               signed_at=report.signed_at, critical=report.text.critical),
            key=person_key, source=h, at=report.signed_at, identity=(h, report.report_id), cause=completed,
            correlation=chain)
        if report.amendment is not None:
            a = report.amendment
            self.add(ev.ReportAmended(hospital=h, report_id=report.report_id, person_key=person_key,
                                      findings=self._enc(a.text.findings), impression=self._enc(a.text.impression),
                                      author_id=a.author_id, signed_at=a.signed_at, reason=a.reason),
                     key=person_key, source=h, at=a.signed_at, identity=(h, report.report_id), cause=finalized,
                     correlation=chain)


def world_events(world: World, keys: Keyring, files: Mapping[str, StudyFiles]) -> list[Envelope]:
    """Every event of ``world``, sorted by time. ``files`` gives each study's stored files (for manifests)."""
    return _Timeline(world, keys, files).build()
