"""A realistic, reproducible event stream for runtime tests: visits, orders, studies, reports and their odd cases.

Persons (most with a national ID number, some known to one hospital only and linked later) have episodes at the
province's hospitals: a visit, the doctor opening the record, one or two orders, the study arriving and completing,
a signed report; sometimes an order is cancelled, a report amended, a series QC-scored or a replica written. Events
are ordered by time, so persons interleave as they would on the log. Personal fields go through
:func:`pipelines.identity.protect`, so nothing identifying is in clear. The same seed gives the same events (ids,
keys, times); only ciphertexts differ, because every encryption draws a fresh nonce.
"""
from __future__ import annotations

import hashlib
import random
import uuid
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from typing import Iterable, Iterator, Sequence

from pipelines.crypto import Keyring
from pipelines.identity import PlainPerson, check_digit, protect
from schemas import events as ev
from schemas.envelope import Envelope
from schemas.registry import REGISTRY

CHINA = timezone(timedelta(hours=8))
START = datetime(2026, 9, 1, 7, 30, tzinfo=CHINA)
HOSPITALS = ("AHSL", "AHYKD", "AHZL", "HFEY", "HFSY", "WHYJS", "BBYX", "AQSL", "FYRM", "HNDY", "MASRM", "LAYY")
REGIONS = ("340102", "340104", "340111", "340202", "340302", "340404", "340503", "340802", "341202", "341502")
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华"
ITEMS = (  # local code, name, modality, body part, series, instances per series
    ("CT001", "头颅CT平扫", "CT", "HEAD", 2, 60),
    ("CT010", "胸部CT平扫", "CT", "CHEST", 3, 250),
    ("CT020", "上腹部CT平扫", "CT", "ABDOMEN", 3, 180),
    ("MR001", "头颅MR平扫", "MR", "HEAD", 5, 24),
    ("MR030", "腰椎MR平扫", "MR", "LSPINE", 4, 15),
    ("DR001", "胸部正位片", "DX", "CHEST", 1, 1),
    ("DR040", "腰椎正侧位片", "DX", "LSPINE", 2, 1),
    ("DR050", "膝关节正侧位片", "DX", "KNEE", 2, 1),
    ("US001", "腹部彩超", "US", "ABDOMEN", 1, 12),
)
DEPARTMENTS = ("呼吸内科", "神经内科", "骨科", "消化内科", "急诊科", "体检中心")
CLASSES = ("outpatient", "outpatient", "outpatient", "inpatient", "emergency", "physical_exam")


@dataclass
class _Person:
    plain: PlainPerson
    keys_by_hospital: dict[str, str]  # person key each hospital uses (scoped until linked)
    national_key: str | None
    scoped_at: str | None  # a hospital that registered the person without the ID number


class StreamBuilder:
    def __init__(self, seed: int, n_persons: int, n_hospitals: int) -> None:
        self.rng = random.Random(seed)
        self.keys = Keyring(
            data_keys={"k1": self.rng.randbytes(32)}, active="k1", partition_secret=self.rng.randbytes(32)
        )
        self.hospitals = HOSPITALS[:n_hospitals]
        self.persons = [self._person(i) for i in range(n_persons)]
        self._seq = 0
        self._timed: list[tuple[datetime, int, Envelope]] = []

    # ------------------------------------------------------------------ people

    def _person(self, i: int) -> _Person:
        rng = self.rng
        born = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 80 * 365))
        first17 = f"{rng.choice(REGIONS)}{born:%Y%m%d}{rng.randrange(1000):03d}"
        name = rng.choice(SURNAMES) + "".join(rng.choices(GIVEN, k=rng.choice((1, 2))))
        phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
        has_id = rng.random() > 0.08
        plain = PlainPerson(name=name, id_number=first17 + check_digit(first17) if has_id else None, phone=phone,
                            hospital_patient_id=f"MRN{i:07d}")
        id_number = plain.id_number
        national_key = self.keys.person_key(id_number) if id_number else None
        scoped_at = rng.choice(self.hospitals) if id_number and rng.random() < 0.15 else None
        return _Person(plain, {}, national_key, scoped_at)

    def _key_at(self, person: _Person, hospital: str) -> tuple[str, ev.ProtectedPerson]:
        plain = replace(person.plain, id_number=None) if hospital == person.scoped_at else person.plain
        key, protected = protect(plain, hospital, self.keys)
        person.keys_by_hospital[hospital] = key
        return key, protected

    # ------------------------------------------------------------------ events

    def _emit(self, payload, *, key: str, source: str, at: datetime) -> None:
        self._seq += 1
        ms = int(at.timestamp() * 1000)
        event_id = uuid.UUID(int=(ms << 80) | (0x7 << 76) | (self.rng.getrandbits(12) << 64) | (0b10 << 62)
                             | self.rng.getrandbits(62))
        envelope = REGISTRY.new(payload, key=key, source=source, occurred_at=at, event_id=event_id,
                                recorded_at=at + timedelta(milliseconds=self.rng.randrange(5, 900)))
        self._timed.append((at, self._seq, envelope))

    def episode(self, person: _Person, hospital: str, at: datetime) -> None:
        rng, n = self.rng, self._seq
        key, protected = self._key_at(person, hospital)
        doctor = f"D{rng.randrange(1, 400):04d}"
        visit = f"V{n:09d}"
        patient_class = rng.choice(CLASSES)
        self._emit(ev.VisitStarted(hospital=hospital, visit_id=visit, person_key=key, person=protected,
                                   patient_class=patient_class, department=rng.choice(DEPARTMENTS),
                                   doctor_id=doctor), key=key, source=hospital, at=at)
        at += timedelta(minutes=rng.randrange(2, 40))
        self._emit(ev.PatientOpened(hospital=hospital, doctor_id=doctor, person_key=key, visit_id=visit),
                   key=key, source=hospital, at=at)
        for j in range(rng.choice((1, 1, 1, 2))):
            at += timedelta(minutes=rng.randrange(1, 20))
            self._exam(key, hospital, doctor, visit, patient_class, f"{n}{j}", at)

    def _exam(self, key: str, hospital: str, doctor: str, visit: str, patient_class: str, ref: str,
              at: datetime) -> None:
        rng = self.rng
        code, name, modality, body, n_series, per_series = rng.choice(ITEMS)
        order_id, accession = f"O{ref}", f"A{ref}"
        self._emit(ev.ExamOrdered(hospital=hospital, order_id=order_id, person_key=key, visit_id=visit,
                                  local_item_code=code, local_item_name=name, modality=modality,
                                  patient_class=patient_class, doctor_id=doctor, accession_number=accession),
                   key=key, source=hospital, at=at)
        if rng.random() < 0.07:
            self._emit(ev.ExamCancelled(hospital=hospital, order_id=order_id, person_key=key, reason="患者取消"),
                       key=key, source=hospital, at=at + timedelta(minutes=rng.randrange(5, 120)))
            return
        at += timedelta(minutes=rng.randrange(10, 240))
        study_uid = f"1.2.156.112605.{rng.randrange(10**6)}.{ref}"
        self._emit(ev.StudyReceived(hospital=hospital, study_uid=study_uid, person_key=key,
                                    accession_number=accession, modality=modality, study_date=at.date()),
                   key=key, source=hospital, at=at)
        if rng.random() < 0.03:  # the modality never finished sending
            return
        series = [ev.SeriesSummary(series_uid=f"{study_uid}.{s + 1}", modality=modality, body_part=body,
                                   description=f"{name} {s + 1}", instance_count=per_series)
                  for s in range(n_series)]
        at += timedelta(minutes=rng.randrange(2, 30))
        total = n_series * per_series
        self._emit(ev.StudyCompleted(hospital=hospital, study_uid=study_uid, person_key=key,
                                     accession_number=accession, order_id=order_id, study_date=at.date(),
                                     modalities=[modality], description=name, series=series, instance_count=total,
                                     total_bytes=total * rng.randrange(200_000, 600_000),
                                     manifest_sha256=hashlib.sha256(study_uid.encode()).hexdigest()),
                   key=key, source=hospital, at=at)
        if rng.random() < 0.2:
            self._emit(ev.QCScored(study_uid=study_uid, series_uid=series[0].series_uid, person_key=key,
                                   hospital=hospital, protocol=f"{modality}-{body}", protocol_version="2026.1",
                                   scores={"coverage": 90.0, "positioning": 85.0, "artefact": 95.0, "clarity": 88.0},
                                   total=89.5, grade="甲"), key=key, source="qc", at=at + timedelta(minutes=3))
        if rng.random() < 0.1:
            sha = hashlib.sha256(f"{study_uid}/obj".encode()).hexdigest()
            self._emit(ev.ReplicaWritten(object_sha256=sha, site="wuhu", url=f"s3://wanying-wuhu/{sha}",
                                         size=total * 400_000), key=sha, source="replicator",
                       at=at + timedelta(minutes=9))
        if rng.random() < 0.08:
            return  # not reported yet
        at += timedelta(hours=rng.randrange(1, 30))
        report_id = f"R{ref}"
        self._emit(ev.ReportFinalized(hospital=hospital, report_id=report_id, person_key=key, study_uid=study_uid,
                                      accession_number=accession,
                                      findings=self.keys.encrypt(f"{name}未见明显异常。", context="findings"),
                                      impression=self.keys.encrypt("未见异常", context="impression"),
                                      author_id=f"R{rng.randrange(1, 60):03d}", signed_at=at,
                                      critical=rng.random() < 0.02), key=key, source=hospital, at=at)
        if rng.random() < 0.04:
            at += timedelta(hours=rng.randrange(1, 48))
            self._emit(ev.ReportAmended(hospital=hospital, report_id=report_id, person_key=key,
                                        findings=self.keys.encrypt(f"{name}：补充所见。", context="findings"),
                                        impression=self.keys.encrypt("补充诊断", context="impression"),
                                        author_id=f"R{rng.randrange(1, 60):03d}", signed_at=at, reason="补充诊断"),
                       key=key, source=hospital, at=at)

    def sign_ins(self, days: int) -> None:
        for day in range(days):
            for hospital in self.hospitals:
                for d in self.rng.sample(range(1, 400), 5):
                    at = START + timedelta(days=day, minutes=self.rng.randrange(0, 60))
                    self._emit(ev.DoctorSignedIn(hospital=hospital, doctor_id=f"D{d:04d}", department="放射科"),
                               key=f"{hospital}:D{d:04d}", source=hospital, at=at)

    def links(self, days: int) -> None:
        """Persons first seen under a hospital-scoped key get linked once their ID number is known."""
        for person in self.persons:
            if person.national_key is None:
                continue
            for hospital, key in person.keys_by_hospital.items():
                if key != person.national_key and self.rng.random() < 0.7:
                    self._emit(ev.PatientLinked(person_key=person.national_key, linked_key=key, hospital=hospital,
                                                method="manual"), key=person.national_key, source=hospital,
                               at=START + timedelta(days=days - 2, hours=3))

    def ordered(self) -> list[Envelope]:
        return [e for _, _, e in sorted(self._timed, key=lambda t: (t[0], t[1]))]


def generate(n_events: int = 50_000, *, n_persons: int = 3000, n_hospitals: int = 10, seed: int = 7,
             days: int = 60) -> list[Envelope]:
    """Exactly ``n_events`` envelopes in time order (the last episodes are cut where the count is reached)."""
    b = StreamBuilder(seed, n_persons, n_hospitals)
    b.sign_ins(days)
    while len(b._timed) < n_events:
        person = b.rng.choice(b.persons)
        at = START + timedelta(days=b.rng.randrange(days), hours=b.rng.randrange(0, 10),
                               minutes=b.rng.randrange(60))
        b.episode(person, b.rng.choice(b.hospitals), at)
    b.links(days)
    return b.ordered()[:n_events]


@lru_cache(maxsize=4)
def cached(n_events: int = 50_000, seed: int = 7) -> tuple[Envelope, ...]:
    """The same stream for every test of a session (generating 50,000 events takes a few seconds)."""
    return tuple(generate(n_events, seed=seed))


def chunks(envelopes: Sequence[Envelope], size: int) -> Iterator[Sequence[Envelope]]:
    for i in range(0, len(envelopes), size):
        yield envelopes[i : i + size]


def by_type(envelopes: Iterable[Envelope]) -> dict[str, int]:
    out: dict[str, int] = {}
    for e in envelopes:
        out[e.type] = out.get(e.type, 0) + 1
    return out
