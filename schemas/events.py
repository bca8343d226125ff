"""The event catalog: one pydantic model per event type and version.

A model's docstring is its description in ``docs/events.md``.  To change an event in a way old readers cannot
take, add a new version and an upcaster in :mod:`schemas.upcasters`; never edit a published version.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.registry import REGISTRY
from schemas.types import (
    DicomUID,
    Encrypted,
    HospitalCode,
    Identifier,
    LookupToken,
    Modality,
    PatientClass,
    PersonKey,
    Sex,
    Sha256Hex,
    ShortText,
)

event = REGISTRY.register


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ProtectedPerson(Payload):
    """A person as a hospital knows them, with every identifying field encrypted or tokenised."""

    name: Encrypted | None = None
    id_number: Encrypted | None = None
    id_token: LookupToken | None = Field(None, description="HMAC token of the normalised ID number, for look-ups")
    phone: Encrypted | None = None
    phone_token: LookupToken | None = Field(None, description="HMAC token of the normalised phone number")
    sex: Sex = "U"
    birth_year: int | None = Field(None, ge=1880, le=2200)
    hospital_patient_id: Identifier | None = Field(None, description="the hospital's own patient ID (MRN)")


# ---------------------------------------------------------------- visits and doctors (HIS)


@event("VisitStarted", topic="person")
class VisitStarted(Payload):
    """A patient's outpatient, emergency or inpatient visit began at a hospital."""

    hospital: HospitalCode
    visit_id: Identifier
    person_key: PersonKey
    person: ProtectedPerson
    patient_class: PatientClass
    department: ShortText
    doctor_id: Identifier | None = None


@event("DoctorSignedIn", topic="directory")
class DoctorSignedIn(Payload):
    """A doctor signed in to the hospital's HIS; the plugin page of that doctor wakes up."""

    hospital: HospitalCode
    doctor_id: Identifier
    department: ShortText | None = None
    workstation: ShortText | None = None


@event("PatientOpened", topic="person")
class PatientOpened(Payload):
    """A doctor opened a patient's record in the HIS."""

    hospital: HospitalCode
    doctor_id: Identifier
    person_key: PersonKey
    visit_id: Identifier | None = None


# ---------------------------------------------------------------- orders, studies, reports


@event("ExamOrdered", topic="person", version=2)
class ExamOrdered(Payload):
    """A doctor ordered an imaging exam. Item codes are the hospital's own; mapping to standard items is separate."""

    hospital: HospitalCode
    order_id: Identifier
    person_key: PersonKey
    visit_id: Identifier | None = None
    local_item_code: ShortText
    local_item_name: ShortText
    modality: Modality | None = None
    patient_class: PatientClass = "outpatient"
    doctor_id: Identifier | None = None
    accession_number: Identifier | None = None


@event("ExamCancelled", topic="person")
class ExamCancelled(Payload):
    """An order was cancelled before it was performed."""

    hospital: HospitalCode
    order_id: Identifier
    person_key: PersonKey
    reason: ShortText | None = None


@event("StudyReceived", topic="person")
class StudyReceived(Payload):
    """The first instance of a study reached our storage."""

    hospital: HospitalCode
    study_uid: DicomUID
    person_key: PersonKey
    accession_number: Identifier | None = None
    modality: Modality | None = None
    study_date: date | None = None


class SeriesSummary(Payload):
    series_uid: DicomUID
    modality: Modality
    body_part: ShortText | None = None
    description: ShortText | None = None
    instance_count: int = Field(ge=0)


@event("StudyCompleted", topic="person")
class StudyCompleted(Payload):
    """Every instance the source announced has arrived; the manifest hash identifies exactly what was stored."""

    hospital: HospitalCode
    study_uid: DicomUID
    person_key: PersonKey
    accession_number: Identifier | None = None
    order_id: Identifier | None = None
    study_date: date
    modalities: list[Modality]
    description: ShortText | None = None
    series: list[SeriesSummary]
    instance_count: int = Field(ge=0)
    total_bytes: int = Field(ge=0)
    manifest_sha256: Sha256Hex


@event("ReportFinalized", topic="person")
class ReportFinalized(Payload):
    """A radiologist signed the report of a study."""

    hospital: HospitalCode
    report_id: Identifier
    person_key: PersonKey
    study_uid: DicomUID | None = None
    accession_number: Identifier | None = None
    findings: Encrypted
    impression: Encrypted
    author_id: Identifier
    signed_at: datetime
    critical: bool = False


@event("ReportAmended", topic="person")
class ReportAmended(Payload):
    """A signed report was corrected; the new text replaces the old, which stays on the log."""

    hospital: HospitalCode
    report_id: Identifier
    person_key: PersonKey
    findings: Encrypted
    impression: Encrypted
    author_id: Identifier
    signed_at: datetime
    reason: ShortText


@event("PatientLinked", topic="person")
class PatientLinked(Payload):
    """A hospital-scoped person key was found to be the same person as a national-ID person key.

    Sent on the partition of ``person_key``; views move the hospital-scoped history under it.
    """

    person_key: PersonKey
    linked_key: PersonKey
    hospital: HospitalCode
    method: Literal["id_number", "manual", "mpi"]


# ---------------------------------------------------------------- doctor side


@event("ReminderRaised", topic="person")
class ReminderRaised(Payload):
    """A doctor was shown how many exams the patient has at other hospitals."""

    hospital: HospitalCode
    doctor_id: Identifier
    person_key: PersonKey
    trigger: Literal["patient_opened", "visit_started", "exam_ordered"]
    exam_count: int = Field(ge=0)
    study_uids: list[DicomUID]


@event("DuplicateFound", topic="person")
class DuplicateFound(Payload):
    """An ordered item matches an earlier exam that may be recognised instead of repeated."""

    hospital: HospitalCode
    order_id: Identifier
    person_key: PersonKey
    standard_item: Identifier
    candidate_study_uid: DicomUID
    candidate_hospital: HospitalCode
    rule_version: ShortText


@event("RecognitionDecided", topic="person", version=2)
class RecognitionDecided(Payload):
    """The doctor accepted (已互认) or declined an earlier exam for an ordered item.

    v2: ``reason_text`` is what the doctor typed, which may name the patient, so it is encrypted
    (context ``reason_text``)."""

    hospital: HospitalCode
    order_id: Identifier
    person_key: PersonKey
    standard_item: Identifier
    candidate_study_uid: DicomUID
    doctor_id: Identifier
    decision: Literal["accepted", "declined"]
    reason_code: Identifier | None = None
    reason_text: Encrypted | None = None


# ---------------------------------------------------------------- patient side and audit


@event("ShareCreated", topic="person")
class ShareCreated(Payload):
    """A patient shared a study by link; the security code is stored only as a hash."""

    share_id: Identifier
    person_key: PersonKey
    study_uids: list[DicomUID]
    expires_at: datetime
    code_hash: ShortText


@event("ShareViewed", topic="person")
class ShareViewed(Payload):
    """Someone opened a share link and gave the right security code."""

    share_id: Identifier
    person_key: PersonKey
    viewer_ip_token: LookupToken | None = None


@event("ShareRevoked", topic="person")
class ShareRevoked(Payload):
    """The patient revoked a share before it expired."""

    share_id: Identifier
    person_key: PersonKey


@event("StudyViewed", topic="person")
class StudyViewed(Payload):
    """Audit: images or the report of a study were opened."""

    person_key: PersonKey
    study_uid: DicomUID
    actor: Identifier
    role: Literal["doctor", "patient", "share", "regulator", "operator"]
    hospital: HospitalCode | None = None


@event("RecordAccessed", topic="person")
class RecordAccessed(Payload):
    """Audit: a person's data was read through an API (which view, by whom)."""

    person_key: PersonKey
    actor: Identifier
    role: ShortText
    resource: ShortText


# ---------------------------------------------------------------- quality and storage


class QCFailedCheck(Payload):
    """One failed QC check: what was measured, the threshold, and where on which image."""

    id: Identifier
    dimension: Literal["coverage", "positioning", "artefact", "clarity"]
    label: ShortText
    value: float | None = None
    threshold: float
    fail_at: float
    direction: Literal["max", "min"]
    score: float = Field(ge=0, le=100)
    where: dict[str, Any] | None = Field(None, description='e.g. {"bbox": [row0, col0, row1, col1]} in pixels, '
                                                          '{"slice": 12}, {"edge": "bottom"}')
    sop_uid: DicomUID | None = Field(None, description="the image the location refers to")


class QCFailedDataCheck(Payload):
    """A failed data check of the digital-imaging service standard (series complete, lossless, tags)."""

    id: Identifier
    label: ShortText
    detail: str = Field(max_length=2000)


@event("QCScored", topic="person")
class QCScored(Payload):
    """Automatic image-quality scores of a series under a versioned protocol."""

    study_uid: DicomUID
    series_uid: DicomUID
    person_key: PersonKey
    hospital: HospitalCode
    protocol: Identifier
    protocol_version: ShortText
    scores: dict[Literal["coverage", "positioning", "artefact", "clarity"], float]
    total: float = Field(ge=0, le=100)
    grade: ShortText
    # optional since the live QC worker: what the dashboard groups by and drills down to
    modality: Modality | None = None
    study_date: date | None = None
    body_part_source: ShortText | None = None
    sop_uid: DicomUID | None = Field(None, description="the image scored (a radiograph) or the series' middle slice")
    failed_checks: list[QCFailedCheck] | None = None
    failed_data_checks: list[QCFailedDataCheck] | None = None


@event("QCBatchCompleted", topic="directory")
class QCBatchCompleted(Payload):
    """A batch QC run (re-scoring a backlog or every study under the protocols in force) finished."""

    run_id: Identifier
    scope: Literal["backlog", "all"]
    protocol_versions: dict[Identifier, ShortText]
    studies: int = Field(ge=0)
    series_scored: int = Field(ge=0)
    series_skipped: int = Field(ge=0)
    failures: int = Field(ge=0)
    seconds: float = Field(ge=0)


@event("RetentionAssigned", topic="storage")
class RetentionAssigned(Payload):
    """A stored object was given a retention class and a date before which it must not be deleted."""

    object_sha256: Sha256Hex
    study_uid: DicomUID
    retention_class: Identifier
    retain_until: date
    legal_hold: bool = False


@event("ReplicaWritten", topic="storage")
class ReplicaWritten(Payload):
    """A copy of an object was written to a data centre."""

    object_sha256: Sha256Hex
    site: Identifier
    url: ShortText
    size: int = Field(ge=0)


@event("ReplicaVerified", topic="storage")
class ReplicaVerified(Payload):
    """A replica's bytes were read back and hashed."""

    object_sha256: Sha256Hex
    site: Identifier
    ok: bool
    detail: ShortText | None = None


# ---------------------------------------------------------------- DICOM ingest (instances and study life-cycle)


@event("InstanceStored", topic="storage")
class InstanceStored(Payload):
    """A DICOM instance was stored byte for byte (a re-sent identical instance produces no event).

    ``dataset_sha256`` is the hash of the dataset exactly as the hospital sent it; ``object_sha256`` names the stored
    Part 10 object. ``version`` is 1 for a new SOP Instance UID and grows when changed content arrives under it.
    """

    hospital: HospitalCode
    person_key: PersonKey
    study_uid: DicomUID
    series_uid: DicomUID
    sop_uid: DicomUID
    sop_class_uid: DicomUID
    transfer_syntax: DicomUID
    object_sha256: Sha256Hex
    dataset_sha256: Sha256Hex
    size: int = Field(ge=0)
    version: int = Field(ge=1)
    source_ae: ShortText
    modality: Modality | None = None


@event("InstanceRevised", topic="person")
class InstanceRevised(Payload):
    """A known SOP Instance UID arrived with different content; both versions are kept."""

    hospital: HospitalCode
    person_key: PersonKey
    study_uid: DicomUID
    sop_uid: DicomUID
    version: int = Field(ge=2)
    object_sha256: Sha256Hex
    previous_object_sha256: Sha256Hex


@event("StudyReopened", topic="person")
class StudyReopened(Payload):
    """An instance arrived for a study already announced complete; a new ``StudyCompleted`` will follow."""

    hospital: HospitalCode
    person_key: PersonKey
    study_uid: DicomUID
    sop_uid: DicomUID
    previous_manifest_sha256: Sha256Hex | None = None


# ---------------------------------------------------------------- HIS ingest and exam-code mapping


@event("PatientUpdated", topic="person")
class PatientUpdated(Payload):
    """A hospital sent new details for a patient (HL7 ADT^A08, FHIR Patient, JSON ``patient``)."""

    hospital: HospitalCode
    person_key: PersonKey
    person: ProtectedPerson
    visit_id: Identifier | None = None


@event("ExamCodeMapped", topic="directory")
class ExamCodeMapped(Payload):
    """A hospital's local exam code now maps to these standard items (replacing any earlier mapping)."""

    hospital: HospitalCode
    local_code: ShortText
    local_name: ShortText
    standard_items: list[Identifier] = Field(min_length=1)
    method: Literal["auto", "manual", "import"]
    catalog_version: ShortText
    actor: Identifier | None = None
    previous_items: list[Identifier] | None = None


@event("ExamCodeQueued", topic="directory")
class ExamCodeQueued(Payload):
    """A local exam code could not be mapped on its own and waits for review, with ranked suggestions."""

    hospital: HospitalCode
    local_code: ShortText
    local_name: ShortText
    reason: ShortText
    suggestions: list[Identifier]
    catalog_version: ShortText


@event("ExamCodeMappingRemoved", topic="directory")
class ExamCodeMappingRemoved(Payload):
    """A mapping was withdrawn; the local code goes back to the review queue."""

    hospital: HospitalCode
    local_code: ShortText
    actor: Identifier
    reason: ShortText


# ---------------------------------------------------------------- report interpretation (patient conversations)


class MarkedTerm(Payload):
    """A glossary term found in the report (the glossary's canonical term, never the report's own words)."""

    canonical: ShortText
    level: Literal["normal_variant", "follow_up", "see_doctor", "urgent"]
    negated: bool = False
    uncertain: bool = False


@event("ConversationStarted", topic="person")
class ConversationStarted(Payload):
    """A patient began asking about a report. The report itself is referenced, never copied; a photographed paper
    report has no reference. ``person_key`` is absent when the report is not linked to a known person, and then
    the conversation id is the partition key."""

    conversation_id: Identifier
    person_key: PersonKey | None = None
    study_uid: DicomUID | None = None
    report_id: Identifier | None = None
    glossary_version: ShortText
    terms: Encrypted = Field(description="JSON list of MarkedTerm, encrypted: which findings a person's report has "
                                         "is health data")
    actor: Identifier
    role: Literal["patient", "doctor"]


@event("ConversationTurnRecorded", topic="person")
class ConversationTurnRecorded(Payload):
    """One turn of an interpretation conversation: what the patient wrote, or the answer and where it came from
    (red-flag rule, the model, or the offline fallback and why). The text is encrypted."""

    conversation_id: Identifier
    person_key: PersonKey | None = None
    turn_index: int = Field(ge=0)
    role: Literal["patient", "assistant"]
    source: Literal["patient", "red_flag", "model", "fallback"]
    red_flag: ShortText | None = None
    fallback_reason: ShortText | None = None
    text: Encrypted
    model: ShortText | None = None
    latency_ms: int | None = Field(None, ge=0)


# ---------------------------------------------------------------- doctor side: standard items and linked history


@event("ExamItemsResolved", topic="person")
class ExamItemsResolved(Payload):
    """The standard items of an order (or of a study that came without one), from the hospital's code mapping.

    Emitted right after the order is appended, and again when the mapping of its local code changes; the duplicate
    check runs on this fact, so deciders never consult the mapping tables."""

    hospital: HospitalCode
    person_key: PersonKey
    order_id: Identifier | None = None
    accession_number: Identifier | None = None
    study_uid: DicomUID | None = None
    standard_items: list[Identifier]
    catalog_version: ShortText
    method: Literal["auto", "manual", "import"]


class MergedExam(Payload):
    """One exam of a hospital-scoped person, as the doctor-side processors know it (no personal data)."""

    exam_id: ShortText
    hospital: HospitalCode
    order_id: Identifier | None = None
    accession_number: Identifier | None = None
    study_uid: DicomUID | None = None
    study_date: date | None = None
    ordered_at: datetime | None = None
    modality: ShortText | None = None
    patient_class: PatientClass | None = None
    standard_items: list[Identifier] = []
    status: Literal["ordered", "imaged", "cancelled"]
    report_status: Literal["none", "final", "amended"]
    report_id: Identifier | None = None
    qc_grade: ShortText | None = None


@event("HospitalKeyLinked", topic="person")
class HospitalKeyLinked(Payload):
    """Sent on the partition of the hospital-scoped ``linked_key`` once a ``PatientLinked`` joined it to
    ``person_key``: from here on, that partition's history is handed over (``PersonHistoryMerged``). Being on the
    hospital-scoped partition, it meets that partition's events in the same order on every replay."""

    person_key: PersonKey
    linked_key: PersonKey
    hospital: HospitalCode


@event("PersonHistoryMerged", topic="person")
class PersonHistoryMerged(Payload):
    """Exams recorded under a hospital-scoped key, handed to the national key it was linked to.

    Decided after ``HospitalKeyLinked`` (the exams known so far) and after every later event on the hospital-scoped
    key (the exam it changed), so the national key's reminders and duplicate checks see the whole history."""

    person_key: PersonKey
    linked_key: PersonKey
    hospital: HospitalCode
    exams: list[MergedExam]
