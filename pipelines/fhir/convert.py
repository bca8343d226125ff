"""FHIR R4 resources (alone or in a Bundle) -> catalog events. Pure: no I/O.

* Encounter (status planned/arrived/triaged/in-progress) -> VisitStarted; class AMB/IMP/EMER/…
* ServiceRequest active -> ExamOrdered; revoked / entered-in-error -> ExamCancelled
* DiagnosticReport final -> ReportFinalized; amended / corrected -> ReportAmended
* Patient -> PatientUpdated when it is the only resource sent; in a Bundle it is the subject the others refer to.

References resolve inside the Bundle (``fullUrl`` or ``Type/id``) and to ``contained`` resources. A subject that
is not in the message is taken as the hospital's patient ID (``Patient/<id>``), giving a hospital-scoped key.
Identifier types: ID number = type code NNCHN / ID / SFZ / NI or system ``urn:oid:2.16.156.10011.1.3``;
MRN = type MR (or the first other identifier); accession = type ACSN; placer order = type PLAC.
"""
from __future__ import annotations

from pipelines.jsonbody import load_json_body

import base64
import binascii
import json
import re
from datetime import date, datetime, timezone

from pydantic import BaseModel, ValidationError

from pipelines.crypto import Keyring
from pipelines.hl7.convert import Conversion
from schemas.envelope import stable_event_id
from pipelines.identity import InvalidIdNumber, InvalidPhone, PlainPerson, normalise_phone, protect
from schemas import events as ev
from schemas.registry import REGISTRY

MAX_BODY_BYTES = 4_000_000
SUPPORTED = ("Encounter", "ServiceRequest", "DiagnosticReport", "Patient")
ID_NUMBER_TYPES = {"NNCHN", "ID", "SFZ", "NI"}
ID_NUMBER_SYSTEMS = {"urn:oid:2.16.156.10011.1.3"}
ENCOUNTER_CLASS = {"AMB": "outpatient", "IMP": "inpatient", "ACUTE": "inpatient", "NONAC": "inpatient",
                   "OBSENC": "inpatient", "PRENC": "outpatient", "SS": "outpatient", "VR": "outpatient",
                   "EMER": "emergency", "HH": "outpatient"}
CRITICAL_CODES = {"CRITICAL", "危急值", "AA", "HH", "LL", "PAN"}
OPEN_ENCOUNTER = {"planned", "arrived", "triaged", "in-progress"}


class FhirError(ValueError):
    def __init__(self, reason: str, location: str = "") -> None:
        super().__init__(reason)
        self.reason, self.location = reason, location


def parse_body(body: bytes) -> dict:
    try:
        doc = load_json_body(body, MAX_BODY_BYTES)
    except ValueError as exc:
        raise FhirError(str(exc)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("resourceType"), str):
        raise FhirError("a FHIR resource must be a JSON object with resourceType", "resourceType")
    return doc


def _text(value, location: str, *, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise FhirError(f"{location} is required", location)
        return ""
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise FhirError(f"{location} must be a string", location)
    return str(value).strip()


def _list(resource: dict, name: str, location: str) -> list:
    value = resource.get(name, [])
    if not isinstance(value, list):
        raise FhirError(f"{location}.{name} must be an array", f"{location}.{name}")
    return value


def _codes(concept, location: str) -> set[str]:
    if not isinstance(concept, dict):
        return set()
    return {str(c.get("code", "")).upper() for c in _list(concept, "coding", location) if isinstance(c, dict)}


def _datetime(value, location: str, *, required: bool = False) -> datetime | None:
    text = _text(value, location, required=required)
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise FhirError(f"{location} is not a FHIR dateTime (YYYY-MM-DDThh:mm:ss+08:00)", location) from None
    if when.tzinfo is None:
        raise FhirError(f"{location} needs a time zone (e.g. 2026-11-28T09:30:00+08:00)", location)
    return when


class _Index:
    def __init__(self, doc: dict) -> None:
        self.by_ref: dict[str, dict] = {}
        self.resources: list[dict] = []
        if doc["resourceType"] == "Bundle":
            for n, entry in enumerate(_list(doc, "entry", "Bundle")):
                res = entry.get("resource") if isinstance(entry, dict) else None
                if not isinstance(res, dict) or not isinstance(res.get("resourceType"), str):
                    raise FhirError(f"Bundle.entry[{n}].resource is missing or has no resourceType",
                                    f"Bundle.entry[{n}]")
                if isinstance(entry.get("fullUrl"), str):
                    self.by_ref[entry["fullUrl"]] = res
                self._add(res)
        else:
            self._add(doc)

    def _add(self, res: dict) -> None:
        self.resources.append(res)
        if isinstance(res.get("id"), str):
            self.by_ref[f"{res['resourceType']}/{res['id']}"] = res
        for contained in res.get("contained", []) if isinstance(res.get("contained"), list) else []:
            if isinstance(contained, dict) and isinstance(contained.get("id"), str):
                self.by_ref[f"#{contained['id']}"] = contained

    def resolve(self, ref_obj, location: str, *, required: bool = False) -> tuple[dict | None, str]:
        """The referenced resource if sent along, and the reference's own id (last path part or identifier)."""
        if not isinstance(ref_obj, dict):
            if required:
                raise FhirError(f"{location} is required", location)
            return None, ""
        ref = _text(ref_obj.get("reference"), f"{location}.reference")
        ident = ref_obj.get("identifier") if isinstance(ref_obj.get("identifier"), dict) else {}
        return self.by_ref.get(ref), (ref.rsplit("/", 1)[-1] if ref else _text(ident.get("value"), location))


def _identifier(resource: dict, kinds: set[str], location: str) -> str:
    for ident in _list(resource, "identifier", location):
        if isinstance(ident, dict) and _codes(ident.get("type"), location) & kinds:
            return _text(ident.get("value"), f"{location}.identifier.value")
    return ""


def _first_identifier(resource: dict, location: str) -> str:
    for ident in _list(resource, "identifier", location):
        if isinstance(ident, dict) and ident.get("value"):
            return _text(ident["value"], f"{location}.identifier.value")
    return _text(resource.get("id"), f"{location}.id")


def plain_person(patient: dict | None, ref_id: str) -> PlainPerson:
    if patient is None:
        if not ref_id:
            raise FhirError("subject must reference a Patient (in the Bundle, or Patient/<hospital patient ID>)",
                            "subject")
        return PlainPerson(hospital_patient_id=ref_id)
    id_number = mrn = ""
    for ident in _list(patient, "identifier", "Patient"):
        if not isinstance(ident, dict):
            continue
        value = _text(ident.get("value"), "Patient.identifier.value")
        types = _codes(ident.get("type"), "Patient.identifier.type")
        if (types & ID_NUMBER_TYPES or ident.get("system") in ID_NUMBER_SYSTEMS) and not id_number:
            id_number = value
        elif ("MR" in types or not types) and not mrn:
            mrn = value
    name = ""
    names = _list(patient, "name", "Patient")
    if names and isinstance(names[0], dict):
        n0 = names[0]
        given = "".join(g for g in n0.get("given", []) if isinstance(g, str)) if isinstance(n0.get("given"),
                                                                                          list) else ""
        name = _text(n0.get("text"), "Patient.name.text") or (_text(n0.get("family"), "Patient.name.family") + given)
    phone = None
    for tel in _list(patient, "telecom", "Patient"):
        if isinstance(tel, dict) and tel.get("system") in ("phone", "sms") and tel.get("value"):
            try:
                phone = normalise_phone(_text(tel["value"], "Patient.telecom.value"))
                break
            except InvalidPhone:
                continue  # landlines are not kept: only a mobile can receive the patient's link
    birth = None
    if patient.get("birthDate"):
        try:
            birth = date.fromisoformat(_text(patient["birthDate"], "Patient.birthDate"))
        except ValueError:
            raise FhirError("Patient.birthDate must be YYYY-MM-DD", "Patient.birthDate") from None
    sex = {"male": "M", "female": "F", "other": "O", "unknown": "U"}.get(str(patient.get("gender", "")))
    return PlainPerson(name=name or None, id_number=id_number or None, phone=phone, sex=sex, birth_date=birth,
                       hospital_patient_id=mrn or _text(patient.get("id"), "Patient.id") or None)


class FhirConverter:
    def __init__(self, keys: Keyring) -> None:
        self.keys = keys

    def convert(self, doc: dict, hospital: str) -> Conversion:
        index = _Index(doc)
        self.hospital, self.index = hospital, index
        main = [r for r in index.resources if r["resourceType"] != "Patient"]
        unknown = sorted({r["resourceType"] for r in main} - set(SUPPORTED))
        if unknown:
            raise FhirError(f"resource type(s) {', '.join(unknown)} not accepted; send {', '.join(SUPPORTED)} "
                            f"(alone or in a Bundle)", "resourceType")
        events = []
        targets = main or [r for r in index.resources if r["resourceType"] == "Patient"]
        if not targets:
            raise FhirError("nothing to take: the Bundle has no Encounter, ServiceRequest, DiagnosticReport or "
                            "Patient", "Bundle.entry")
        for n, res in enumerate(targets):
            kind = res["resourceType"]
            try:
                payload, key, when = getattr(self, "_" + kind.lower())(res)
            except ValidationError as exc:
                err = exc.errors()[0]
                raise FhirError(f"{kind}: {'.'.join(str(p) for p in err['loc'])} {err['msg']}", kind) from None
            version = _text((res.get("meta") or {}).get("versionId") if isinstance(res.get("meta"), dict) else "",
                            f"{kind}.meta.versionId")
            identity = _text(res.get("id"), f"{kind}.id") or str(n)
            content = json.dumps(res, sort_keys=True, ensure_ascii=False)  # same resource, same id
            event_id = stable_event_id(int(when.timestamp() * 1000), hospital, kind, identity, version, content)
            events.append(REGISTRY.new(payload, key=key, source=hospital, occurred_at=when, event_id=event_id))
        return Conversion(events)

    def _subject(self, res: dict, kind: str) -> tuple[str, ev.ProtectedPerson]:
        patient, ref_id = self.index.resolve(res.get("subject"), f"{kind}.subject", required=True)
        return protect_or_fail(plain_person(patient, ref_id), self.hospital, self.keys)

    def _patient(self, res: dict) -> tuple[BaseModel, str, datetime]:
        key, person = protect_or_fail(plain_person(res, ""), self.hospital, self.keys)
        when = _datetime((res.get("meta") or {}).get("lastUpdated"), "Patient.meta.lastUpdated") or _now()
        return ev.PatientUpdated(hospital=self.hospital, person_key=key, person=person), key, when

    def _encounter(self, res: dict) -> tuple[BaseModel, str, datetime]:
        status = _text(res.get("status"), "Encounter.status", required=True)
        if status not in OPEN_ENCOUNTER:
            raise FhirError(f"Encounter.status {status!r} is not a visit start; send it when the visit begins "
                            f"({', '.join(sorted(OPEN_ENCOUNTER))})", "Encounter.status")
        klass = res.get("class") if isinstance(res.get("class"), dict) else {}
        code = _text(klass.get("code"), "Encounter.class.code", required=True).upper()
        if code not in ENCOUNTER_CLASS:
            raise FhirError(f"Encounter.class.code {code!r} is not one of {', '.join(ENCOUNTER_CLASS)}",
                            "Encounter.class")
        key, person = self._subject(res, "Encounter")
        visit_id = _first_identifier(res, "Encounter")
        if not visit_id:
            raise FhirError("Encounter.identifier (visit number) or Encounter.id is required", "Encounter.identifier")
        period = res.get("period") if isinstance(res.get("period"), dict) else {}
        when = _datetime(period.get("start"), "Encounter.period.start") or _now()
        doctor = ""
        for part in _list(res, "participant", "Encounter"):
            if isinstance(part, dict):
                doctor = self.index.resolve(part.get("individual"), "Encounter.participant.individual")[1]
                if doctor:
                    break
        service = res.get("serviceType") if isinstance(res.get("serviceType"), dict) else {}
        department = _text(service.get("text"), "Encounter.serviceType.text")
        if not department:
            locations = _list(res, "location", "Encounter")
            if locations and isinstance(locations[0], dict) and isinstance(locations[0].get("location"), dict):
                department = _text(locations[0]["location"].get("display"), "Encounter.location.display")
        payload = ev.VisitStarted(hospital=self.hospital, visit_id=visit_id, person_key=key, person=person,
                                  patient_class=ENCOUNTER_CLASS[code], department=department[:256],
                                  doctor_id=doctor or None)
        return payload, key, when

    def _servicerequest(self, res: dict) -> tuple[BaseModel, str, datetime]:
        status = _text(res.get("status"), "ServiceRequest.status", required=True)
        key, _person = self._subject(res, "ServiceRequest")
        order_id = _identifier(res, {"PLAC"}, "ServiceRequest") or _first_identifier(res, "ServiceRequest")
        if not order_id:
            raise FhirError("ServiceRequest.identifier (placer order number) is required", "ServiceRequest.identifier")
        when = _datetime(res.get("authoredOn"), "ServiceRequest.authoredOn") or _now()
        if status in ("revoked", "entered-in-error"):
            reason = ""
            notes = _list(res, "note", "ServiceRequest")
            if notes and isinstance(notes[0], dict):
                reason = _text(notes[0].get("text"), "ServiceRequest.note.text")
            return ev.ExamCancelled(hospital=self.hospital, order_id=order_id, person_key=key,
                                    reason=reason[:256] or None), key, when
        if status != "active":
            raise FhirError(f"ServiceRequest.status {status!r}: send active to order, revoked to cancel",
                            "ServiceRequest.status")
        code = res.get("code") if isinstance(res.get("code"), dict) else {}
        codings = [c for c in _list(code, "coding", "ServiceRequest.code") if isinstance(c, dict)]
        local = next((c for c in codings if c.get("code")), {})
        item_code = _text(local.get("code"), "ServiceRequest.code.coding.code")
        if not item_code:
            raise FhirError("ServiceRequest.code.coding[].code (local exam item code) is required",
                            "ServiceRequest.code")
        item_name = _text(local.get("display"), "ServiceRequest.code.coding.display") or _text(
            code.get("text"), "ServiceRequest.code.text") or item_code
        modality = next((str(c.get("code")) for c in codings
                         if c.get("system") == "http://dicom.nema.org/resources/ontology/DCM"
                         and re.fullmatch(r"[A-Z]{2,4}", str(c.get("code", "")))), None)
        encounter, visit_ref = self.index.resolve(res.get("encounter"), "ServiceRequest.encounter")
        visit_id = _first_identifier(encounter, "Encounter") if encounter else visit_ref
        klass = ((encounter or {}).get("class") or {}).get("code", "") if isinstance(
            (encounter or {}).get("class"), dict) else ""
        doctor = self.index.resolve(res.get("requester"), "ServiceRequest.requester")[1]
        payload = ev.ExamOrdered(
            hospital=self.hospital, order_id=order_id, person_key=key, visit_id=visit_id or None,
            local_item_code=item_code[:256], local_item_name=item_name[:256], modality=modality,
            patient_class=ENCOUNTER_CLASS.get(str(klass).upper(), "outpatient"), doctor_id=doctor or None,
            accession_number=_identifier(res, {"ACSN"}, "ServiceRequest") or None)
        return payload, key, when

    def _diagnosticreport(self, res: dict) -> tuple[BaseModel, str, datetime]:
        status = _text(res.get("status"), "DiagnosticReport.status", required=True)
        if status not in ("final", "amended", "corrected", "appended"):
            raise FhirError(f"DiagnosticReport.status {status!r}: only final or amended/corrected reports are "
                            f"taken; send the report once it is signed", "DiagnosticReport.status")
        key, _person = self._subject(res, "DiagnosticReport")
        report_id = _first_identifier(res, "DiagnosticReport")
        if not report_id:
            raise FhirError("DiagnosticReport.identifier or id is required", "DiagnosticReport.identifier")
        signed = _datetime(res.get("issued"), "DiagnosticReport.issued", required=True)
        impression = _text(res.get("conclusion"), "DiagnosticReport.conclusion")
        findings = ""
        for form in _list(res, "presentedForm", "DiagnosticReport"):
            plain = isinstance(form, dict) and str(form.get("contentType", "")).startswith("text/plain")
            if plain and form.get("data"):
                try:
                    findings = base64.b64decode(_text(form["data"], "presentedForm.data"), validate=True).decode()
                except (binascii.Error, UnicodeDecodeError):
                    raise FhirError("DiagnosticReport.presentedForm.data must be base64 of UTF-8 text",
                                    "DiagnosticReport.presentedForm") from None
                break
        if not findings and not impression:
            raise FhirError("the report has no text: give conclusion and/or presentedForm (text/plain)",
                            "DiagnosticReport.conclusion")
        author = ""
        for field in ("resultsInterpreter", "performer"):
            for ref in _list(res, field, "DiagnosticReport"):
                author = author or self.index.resolve(ref, f"DiagnosticReport.{field}")[1]
        if not author:
            raise FhirError("DiagnosticReport.resultsInterpreter (or performer) is required",
                            "DiagnosticReport.resultsInterpreter")
        common = dict(hospital=self.hospital, report_id=report_id, person_key=key, author_id=author,
                      signed_at=signed, findings=self.keys.encrypt(findings, context="findings"),
                      impression=self.keys.encrypt(impression, context="impression"))
        if status == "final":
            critical = any(_codes(c, "DiagnosticReport.conclusionCode") & CRITICAL_CODES
                           for c in _list(res, "conclusionCode", "DiagnosticReport"))
            study_uid = None
            for ref in _list(res, "imagingStudy", "DiagnosticReport"):
                study, ref_id = self.index.resolve(ref, "DiagnosticReport.imagingStudy")
                for ident in _list(study or {}, "identifier", "ImagingStudy"):
                    if isinstance(ident, dict) and str(ident.get("value", "")).startswith("urn:oid:"):
                        study_uid = ident["value"][8:]
                study_uid = study_uid or (ref_id if re.fullmatch(r"[0-9.]+", ref_id or "") else None)
            return ev.ReportFinalized(**common, study_uid=study_uid,
                                      accession_number=_identifier(res, {"ACSN"}, "DiagnosticReport") or None,
                                      critical=bool(critical)), key, signed
        return ev.ReportAmended(**common, reason=f"report {status} (DiagnosticReport.status)"), key, signed


def protect_or_fail(person: PlainPerson, hospital: str, keys: Keyring):
    try:
        return protect(person, hospital, keys)
    except (InvalidIdNumber, InvalidPhone) as exc:
        raise FhirError(f"Patient: {exc}", "Patient.identifier") from None


def _now() -> datetime:
    return datetime.now(timezone.utc)
