"""HL7 v2 messages -> events. Pure: no I/O; personal data is encrypted with the key ring on the way.

Field choices (documented for interface engineers in ``docs/his_ingest.md``):
ADT^A01/A04 -> VisitStarted, ADT^A08 -> PatientUpdated; ORM^O01/OMI^O23 with ORC-1 NW -> ExamOrdered, CA/OC/DC ->
ExamCancelled; ORU^R01 with OBR-25 F -> ReportFinalized, C -> ReportAmended; ZWY^Z01 -> PatientOpened,
ZWY^Z02 -> DoctorSignedIn.
"""
from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import BaseModel, ValidationError

from pipelines.crypto import Keyring
from pipelines.hl7.message import Hl7Error, Message, Segment, parse_date, parse_ts
from pipelines.identity import InvalidIdNumber, InvalidPhone, PlainPerson, normalise_phone, protect
from schemas.envelope import Envelope, stable_event_id
from schemas.events import (
    DoctorSignedIn,
    ExamCancelled,
    ExamOrdered,
    PatientOpened,
    PatientUpdated,
    ProtectedPerson,
    ReportAmended,
    ReportFinalized,
    VisitStarted,
)
from schemas.registry import REGISTRY

SUPPORTED = {("ADT", "A01"), ("ADT", "A04"), ("ADT", "A08"), ("ORM", "O01"), ("OMI", "O23"), ("ORU", "R01"),
             ("ZWY", "Z01"), ("ZWY", "Z02")}
ID_NUMBER_TYPES = {"ID", "NNCHN", "SFZ", "NI", "NN"}
MRN_TYPES = {"MR", "MRN", "PI", "PT", "PN"}
PATIENT_CLASS = {"O": "outpatient", "R": "outpatient", "P": "outpatient", "I": "inpatient", "B": "inpatient",
                 "E": "emergency", "门诊": "outpatient", "住院": "inpatient", "急诊": "emergency",
                 "体检": "physical_exam", "PE": "physical_exam", "H": "physical_exam"}
SEX = {"M": "M", "F": "F", "O": "O", "U": "U", "A": "O", "N": "U", "男": "M", "女": "F", "1": "M", "2": "F",
       "0": "U", "9": "U"}
CANCEL_CODES = {"CA", "OC", "DC", "CR"}
FINDINGS_WORDS = ("GDT", "FINDING", "所见", "表现", "描述")
IMPRESSION_WORDS = ("IMP", "诊断", "印象", "结论", "意见")
CRITICAL_FLAGS = {"AA", "HH", "LL", "PAN", "C", "CRIT", "危急"}


@dataclass(frozen=True)
class Conversion:
    """The events one HIS message becomes (ExamOrdered ones are then resolved to standard items on append)."""

    events: list[Envelope]


def _required(seg: Segment | None, n: int, what: str, *, comp: int = 1, sub: int = 1) -> str:
    name = seg.name if seg else "?"
    value = seg.get(n, comp=comp, sub=sub) if seg else ""
    if not value:
        raise Hl7Error(f"{name}-{n} {what} is required", code="101", location=f"{name}-{n}")
    return value


def _need_segment(msg: Message, name: str) -> Segment:
    seg = msg.segment(name)
    if seg is None:
        raise Hl7Error(f"{msg.message_type}^{msg.trigger} needs a {name} segment", code="100", location=name)
    return seg


def person_of(pid: Segment, hospital: str, keys: Keyring) -> tuple[str, ProtectedPerson]:
    id_number = mrn = None
    for rep in range(1, len(pid.reps(3)) + 1):
        value, kind = pid.get(3, rep=rep, comp=1), pid.get(3, rep=rep, comp=5).upper()
        if not value:
            continue
        if kind in ID_NUMBER_TYPES and id_number is None:
            id_number = value
        elif (kind in MRN_TYPES or not kind) and mrn is None:
            mrn = value
    mrn = mrn or pid.get(2) or None
    if id_number is None and len(pid.get(19)) in (15, 18):  # some HIS put the resident ID number in PID-19
        id_number = pid.get(19)
    family, given = pid.get(5, comp=1), pid.get(5, comp=2)
    cjk = re.search(r"[\u3400-\u9fff]", family + given)
    name = (family + given) if cjk else " ".join(p for p in (given, family) if p)
    phone = None
    for rep in range(1, len(pid.reps(13)) + 1):
        for candidate in (pid.get(13, rep=rep, comp=12), pid.get(13, rep=rep, comp=1)):
            try:
                phone = normalise_phone(candidate) if candidate else None
            except InvalidPhone:
                phone = None  # landlines and extensions are not kept: only a mobile can receive the SMS link
            if phone:
                break
        if phone:
            break
    sex = SEX.get(pid.get(8).upper())
    plain = PlainPerson(name=name or None, id_number=id_number, phone=phone, sex=sex,
                        birth_date=parse_date(pid.get(7), "PID-7"), hospital_patient_id=mrn)
    try:
        return protect(plain, hospital, keys)
    except InvalidIdNumber as exc:
        where = "PID-3" if id_number else "PID-3/PID-2"
        raise Hl7Error(f"{where}: {exc}", code="102" if id_number else "101", location=where) from None
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        where = {"birth_year": "PID-7", "hospital_patient_id": "PID-3"}.get(field, "PID")
        raise Hl7Error(f"{where}: {field} {err['msg']}", code="102", location=where) from None


def _patient_class(pv1: Segment | None, *, required: bool) -> str:
    raw = pv1.get(2) if pv1 else ""
    if not raw:
        if required:
            raise Hl7Error("PV1-2 patient class is required (O, I, E or 体检)", code="101", location="PV1-2")
        return "outpatient"
    value = PATIENT_CLASS.get(raw.upper()) or PATIENT_CLASS.get(raw)
    if value is None:
        raise Hl7Error(f"PV1-2 patient class {raw!r} is not one of O, I, E, R, P, B, 门诊, 住院, 急诊, 体检",
                       code="103", location="PV1-2")
    return value


class Converter:
    def __init__(self, keys: Keyring) -> None:
        self.keys = keys

    def convert(self, msg: Message, hospital: str) -> Conversion:
        kind = (msg.message_type, msg.trigger)
        if kind not in SUPPORTED:
            supported = ", ".join(f"{a}^{b}" for a, b in sorted(SUPPORTED))
            raise Hl7Error(f"message type {msg.message_type}^{msg.trigger} is not accepted here; supported: "
                           f"{supported}", ack="AR", code="200" if kind[0] not in {k[0] for k in SUPPORTED}
                           else "201", location="MSH-9")
        when = parse_ts(msg.msh.get(7), "MSH-7") or datetime.now(timezone.utc)
        self._when, self._hospital, self._msg, self._n = when, hospital, msg, 0
        handler = {"ADT": self._adt, "ORM": self._order, "OMI": self._order, "ORU": self._report,
                   "ZWY": self._z}[kind[0]]
        return handler(msg)

    def _event(self, payload: BaseModel, key: str, occurred_at: datetime | None = None) -> Envelope:
        self._n += 1
        when = occurred_at or self._when
        # Same bytes, same ids (a re-send is dropped by idempotent consumers); different bytes under a reused
        # control ID get different ids, so nothing is lost.
        event_id = stable_event_id(int(when.timestamp() * 1000), self._hospital, self._msg.control_id,
                                   hashlib.sha256(self._msg.raw).hexdigest(), str(self._n))
        return REGISTRY.new(payload, key=key, source=self._hospital, occurred_at=when, event_id=event_id)

    def _build(self, model: type[BaseModel], location: str, **fields) -> BaseModel:
        try:
            return model(**fields)
        except ValidationError as exc:
            err = exc.errors()[0]
            where = ".".join(str(p) for p in err["loc"])
            raise Hl7Error(f"{location}: {where} {err['msg']}", code="102", location=location) from None

    # ------------------------------------------------------------------ ADT

    def _adt(self, msg: Message) -> Conversion:
        pid = _need_segment(msg, "PID")
        pv1 = msg.segment("PV1")
        key, person = person_of(pid, self._hospital, self.keys)
        evn = msg.segment("EVN")
        when = parse_ts(evn.get(2), "EVN-2") if evn else None
        visit_id = pv1.get(19) if pv1 else ""
        if msg.trigger == "A08":
            payload = self._build(PatientUpdated, "PID", hospital=self._hospital, person_key=key, person=person,
                                  visit_id=visit_id or None)
            return Conversion([self._event(payload, key, when)])
        if not visit_id:
            raise Hl7Error("PV1-19 visit number is required for a visit", code="101", location="PV1-19")
        payload = self._build(
            VisitStarted, "PV1", hospital=self._hospital, visit_id=visit_id, person_key=key, person=person,
            patient_class=_patient_class(pv1, required=True),
            department=(pv1.get(3) or pv1.get(10))[:256], doctor_id=pv1.get(7) or None)
        return Conversion([self._event(payload, key, when)])

    # ------------------------------------------------------------------ orders

    def _order(self, msg: Message) -> Conversion:
        pid = _need_segment(msg, "PID")
        key, _person = person_of(pid, self._hospital, self.keys)
        pv1 = msg.segment("PV1")
        groups: list[tuple[Segment, list[Segment]]] = []
        for seg in msg.segments:
            if seg.name == "ORC":
                groups.append((seg, []))
            elif seg.name == "OBR":
                if not groups:
                    raise Hl7Error("OBR before any ORC: each order starts with ORC", code="100", location="OBR")
                groups[-1][1].append(seg)
        if not groups:
            raise Hl7Error(f"{msg.message_type}^{msg.trigger} needs at least one ORC segment", code="100",
                           location="ORC")
        events = []
        for orc, obrs in groups:
            control = orc.get(1).upper()
            if control == "NW":
                if not obrs:
                    raise Hl7Error("a new order (ORC-1 NW) needs an OBR with the exam item in OBR-4", code="100",
                                   location="OBR")
                for obr in obrs:
                    events.append(self._ordered(orc, obr, pv1, key))
            elif control in CANCEL_CODES:
                for obr in obrs or [None]:
                    order_id = (obr.get(2) if obr else "") or _required(orc, 2, "placer order number")
                    payload = self._build(ExamCancelled, "ORC", hospital=self._hospital, order_id=order_id,
                                          person_key=key, reason=(orc.get(16, comp=2) or orc.get(16)) or None)
                    events.append(self._event(payload, key, parse_ts(orc.get(9), "ORC-9")))
            else:
                raise Hl7Error(f"ORC-1 order control {control or '(empty)'!r} is not handled: send NW for a new "
                               f"order, CA/OC/DC to cancel", code="103", location="ORC-1")
        return Conversion(events)

    def _ordered(self, orc: Segment, obr: Segment, pv1: Segment | None, key: str) -> Envelope:
        order_id = obr.get(2) or _required(orc, 2, "placer order number")
        code = _required(obr, 4, "universal service ID (local exam item code)")
        name = obr.get(4, comp=2) or code
        modality = obr.get(24).upper()
        payload = self._build(
            ExamOrdered, "OBR", hospital=self._hospital, order_id=order_id, person_key=key,
            visit_id=(pv1.get(19) if pv1 else "") or None, local_item_code=code[:256], local_item_name=name[:256],
            modality=modality if re.fullmatch(r"[A-Z]{2,4}", modality) else None,
            patient_class=_patient_class(pv1, required=False),
            doctor_id=orc.get(12) or obr.get(16) or None,
            accession_number=obr.get(18) or orc.get(3) or obr.get(3) or None)
        return self._event(payload, key, parse_ts(orc.get(9), "ORC-9"))

    # ------------------------------------------------------------------ reports

    def _report(self, msg: Message) -> Conversion:
        pid = _need_segment(msg, "PID")
        key, _person = person_of(pid, self._hospital, self.keys)
        zds = msg.segment("ZDS")
        events: list[Envelope] = []
        current: list | None = None
        blocks: list[list] = []
        for seg in msg.segments:
            if seg.name == "OBR":
                current = [seg, [], []]
                blocks.append(current)
            elif seg.name in ("OBX", "NTE") and current is not None:
                current[1 if seg.name == "OBX" else 2].append(seg)
        if not blocks:
            raise Hl7Error("ORU^R01 needs an OBR segment", code="100", location="OBR")
        orc = msg.segment("ORC")
        for obr, obxs, ntes in blocks:
            status = obr.get(25).upper() or (obxs[0].get(11).upper() if obxs else "")
            if status not in ("F", "C"):
                raise Hl7Error(f"OBR-25 result status {status or '(empty)'!r}: only final (F) or corrected (C) "
                               f"reports are stored; send the report once it is signed", ack="AR", code="103",
                               location="OBR-25")
            findings, impression, critical = [], [], False
            for obx in obxs:
                label = " ".join(obx.components(3)).upper()
                text = "\n".join(obx.get(5, rep=r) for r in range(1, len(obx.reps(5)) + 1)).strip()
                critical = critical or obx.get(8).upper() in CRITICAL_FLAGS
                if not text:
                    continue
                if any(w in label for w in IMPRESSION_WORDS):
                    impression.append(text)
                else:
                    findings.append(text)
            if not findings and not impression:
                raise Hl7Error("the report has no text: put findings and impression in OBX-5 (OBX-3 GDT / IMP)",
                               code="101", location="OBX-5")
            report_id = obr.get(3) or _required(obr, 2, "report (filler or placer order) number")
            author = obr.get(32, comp=1, sub=1) or (obxs[0].get(16) if obxs else "")
            if not author:
                raise Hl7Error("OBR-32 principal result interpreter (author ID) is required", code="101",
                               location="OBR-32")
            signed = (parse_ts(obr.get(22), "OBR-22") or (parse_ts(obxs[0].get(19), "OBX-19") if obxs else None)
                      or self._when)
            common = dict(hospital=self._hospital, report_id=report_id, person_key=key,
                          findings=self.keys.encrypt("\n".join(findings), context="findings"),
                          impression=self.keys.encrypt("\n".join(impression), context="impression"),
                          author_id=author, signed_at=signed)
            if status == "F":
                study_uid = zds.get(1) if zds else ""
                payload = self._build(ReportFinalized, "OBR", **common, study_uid=study_uid or None,
                                      accession_number=obr.get(18) or (orc.get(3) if orc else "") or None,
                                      critical=critical)
            else:
                reason = " ".join(n.get(3) for n in ntes if n.get(3)) or "corrected report (OBR-25 C)"
                payload = self._build(ReportAmended, "OBR", **common, reason=reason[:256])
            events.append(self._event(payload, key, signed))
        return Conversion(events)

    # ------------------------------------------------------------------ Z-messages (our convention)

    def _z(self, msg: Message) -> Conversion:
        zdr = _need_segment(msg, "ZDR")
        doctor = _required(zdr, 1, "doctor ID")
        if msg.trigger == "Z02":
            payload = self._build(DoctorSignedIn, "ZDR", hospital=self._hospital, doctor_id=doctor,
                                  department=zdr.get(2) or None, workstation=zdr.get(3) or None)
            return Conversion([self._event(payload, f"{self._hospital}:{doctor}")])
        pid = _need_segment(msg, "PID")
        key, _person = person_of(pid, self._hospital, self.keys)
        pv1 = msg.segment("PV1")
        payload = self._build(PatientOpened, "ZDR", hospital=self._hospital, doctor_id=doctor, person_key=key,
                              visit_id=(pv1.get(19) if pv1 else "") or None)
        return Conversion([self._event(payload, key)])
