"""The plain JSON HIS event format and its conversion to catalog events. Pure: no I/O.

One object, or a JSON array of objects (all or nothing), each with a ``kind``::

    {"kind": "visit", "message_id": "HIS-123", "occurred_at": "2026-11-28T09:30:00+08:00",
     "patient": {"name": "…", "id_number": "…", "phone": "…", "sex": "M", "birth_date": "1985-06-12",
                 "patient_id": "M0012345"},
     "visit_id": "MZ001", "patient_class": "outpatient", "department": "呼吸内科", "doctor_id": "D0231"}

Kinds: visit, patient (details changed), order, cancel, report, doctor_sign_in, patient_opened. ``message_id``
is optional; when given, a re-sent message produces the same event ids.
"""
from __future__ import annotations

from pipelines.jsonbody import load_json_body

from datetime import date, datetime
from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from pipelines.crypto import Keyring
from pipelines.hl7.convert import Conversion
from schemas.envelope import stable_event_id
from pipelines.identity import InvalidIdNumber, InvalidPhone, PlainPerson, protect
from schemas import events as ev
from schemas.envelope import Envelope, new_event_id
from schemas.registry import REGISTRY
from schemas.types import DicomUID, Identifier, Modality, PatientClass, ShortText

MAX_BODY_BYTES = 2_000_000


class HisJsonError(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Patient(_In):
    name: str | None = Field(None, max_length=64)
    id_number: str | None = Field(None, max_length=40)
    phone: str | None = Field(None, max_length=32)
    sex: Literal["M", "F", "O", "U"] | None = None
    birth_date: date | None = None
    patient_id: Identifier | None = Field(None, description="the hospital's own patient ID (MRN)")


class _Base(_In):
    message_id: Identifier | None = None
    occurred_at: datetime


class Visit(_Base):
    kind: Literal["visit"]
    patient: Patient
    visit_id: Identifier
    patient_class: PatientClass
    department: ShortText = ""
    doctor_id: Identifier | None = None


class PatientDetails(_Base):
    kind: Literal["patient"]
    patient: Patient
    visit_id: Identifier | None = None


class Order(_Base):
    kind: Literal["order"]
    patient: Patient
    order_id: Identifier
    item_code: ShortText = Field(min_length=1)
    item_name: ShortText = Field(min_length=1)
    modality: Modality | None = None
    visit_id: Identifier | None = None
    patient_class: PatientClass = "outpatient"
    doctor_id: Identifier | None = None
    accession_number: Identifier | None = None


class Cancel(_Base):
    kind: Literal["cancel"]
    patient: Patient
    order_id: Identifier
    reason: ShortText | None = None


class Report(_Base):
    kind: Literal["report"]
    patient: Patient
    report_id: Identifier
    status: Literal["final", "amended"]
    findings: str = Field(max_length=20_000)
    impression: str = Field(max_length=20_000)
    author_id: Identifier
    signed_at: datetime
    study_uid: DicomUID | None = None
    accession_number: Identifier | None = None
    critical: bool = False
    amend_reason: ShortText | None = None


class DoctorSignIn(_Base):
    kind: Literal["doctor_sign_in"]
    doctor_id: Identifier
    department: ShortText | None = None
    workstation: ShortText | None = None


class PatientOpenedIn(_Base):
    kind: Literal["patient_opened"]
    patient: Patient
    doctor_id: Identifier
    visit_id: Identifier | None = None


HisEvent = Annotated[Union[Visit, PatientDetails, Order, Cancel, Report, DoctorSignIn, PatientOpenedIn],
                     Field(discriminator="kind")]
_ADAPTER = TypeAdapter(list[HisEvent])


def parse_body(body: bytes) -> list:
    try:
        doc = load_json_body(body, MAX_BODY_BYTES)
    except ValueError as exc:
        raise HisJsonError(str(exc)) from None
    items = doc if isinstance(doc, list) else [doc]
    try:
        return _ADAPTER.validate_python(items)
    except ValidationError as exc:
        raise HisJsonError(explain(exc, indexed=isinstance(doc, list))) from None


def explain(exc: ValidationError, *, indexed: bool | None = None) -> str:
    """Where and what, never the value (it may be personal data). ``indexed``: the first location element is a
    list index (shown as ``#n`` when True, dropped when False)."""
    parts = []
    for err in exc.errors()[:5]:
        loc = [str(p) for p in err["loc"]]
        prefix = ""
        if indexed is not None and loc:
            first = loc.pop(0)
            prefix = f"#{first} " if indexed else ""
        parts.append(f"{prefix}{'.'.join(loc) or '(root)'}: {err['msg']}")
    return "; ".join(parts)


def _person(p: Patient, hospital: str, keys: Keyring, where: str):
    try:
        return protect(PlainPerson(name=p.name, id_number=p.id_number, phone=p.phone, sex=p.sex,
                                   birth_date=p.birth_date, hospital_patient_id=p.patient_id), hospital, keys)
    except (InvalidIdNumber, InvalidPhone) as exc:
        raise HisJsonError(f"{where}patient: {exc}") from None
    except ValidationError as exc:
        raise HisJsonError(f"{where}patient: {explain(exc)}") from None


def to_events(items: list, hospital: str, keys: Keyring) -> Conversion:
    events: list[Envelope] = []
    for n, item in enumerate(items):
        where = f"#{n} " if len(items) > 1 else ""
        for name in ("occurred_at", "signed_at"):
            value = getattr(item, name, None)
            if value is not None and value.tzinfo is None:
                raise HisJsonError(f"{where}{name}: needs a time zone offset, e.g. 2026-11-28T09:30:00+08:00")
        key = None
        if hasattr(item, "patient"):
            key, person = _person(item.patient, hospital, keys, where)
        if isinstance(item, Visit):
            payload = ev.VisitStarted(hospital=hospital, visit_id=item.visit_id, person_key=key, person=person,
                                      patient_class=item.patient_class, department=item.department,
                                      doctor_id=item.doctor_id)
        elif isinstance(item, PatientDetails):
            payload = ev.PatientUpdated(hospital=hospital, person_key=key, person=person, visit_id=item.visit_id)
        elif isinstance(item, Order):
            payload = ev.ExamOrdered(hospital=hospital, order_id=item.order_id, person_key=key,
                                     visit_id=item.visit_id, local_item_code=item.item_code,
                                     local_item_name=item.item_name, modality=item.modality,
                                     patient_class=item.patient_class, doctor_id=item.doctor_id,
                                     accession_number=item.accession_number)
        elif isinstance(item, Cancel):
            payload = ev.ExamCancelled(hospital=hospital, order_id=item.order_id, person_key=key, reason=item.reason)
        elif isinstance(item, Report):
            text = dict(findings=keys.encrypt(item.findings, context="findings"),
                        impression=keys.encrypt(item.impression, context="impression"))
            common = dict(hospital=hospital, report_id=item.report_id, person_key=key, author_id=item.author_id,
                          signed_at=item.signed_at, **text)
            if item.status == "final":
                payload = ev.ReportFinalized(**common, study_uid=item.study_uid,
                                             accession_number=item.accession_number, critical=item.critical)
            else:
                if not item.amend_reason:
                    raise HisJsonError(f"{where}amend_reason: required when status is amended")
                payload = ev.ReportAmended(**common, reason=item.amend_reason)
        elif isinstance(item, DoctorSignIn):
            key = f"{hospital}:{item.doctor_id}"
            payload = ev.DoctorSignedIn(hospital=hospital, doctor_id=item.doctor_id, department=item.department,
                                        workstation=item.workstation)
        else:
            payload = ev.PatientOpened(hospital=hospital, doctor_id=item.doctor_id, person_key=key,
                                       visit_id=item.visit_id)
        event_id = (stable_event_id(int(item.occurred_at.timestamp() * 1000), hospital, item.message_id, str(n),
                                    item.model_dump_json()) if item.message_id else new_event_id())
        events.append(REGISTRY.new(payload, key=key, source=hospital, occurred_at=item.occurred_at,
                                   event_id=event_id))
    return Conversion(events)
