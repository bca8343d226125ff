"""The demo world's data model: hospitals, patients, visits, orders, studies, series plans, reports.

Frozen dataclasses with no behaviour beyond small derived values; :mod:`wanying.demo.world` generates them.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from wanying.demo.catalog import ExamItem, SeriesTemplate
from wanying.demo.reports import ReportText

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no daylight saving since 1991: a fixed offset is exact
BASE_ANCHOR = date(2026, 10, 31)
_UID_NAMESPACE = uuid.UUID("8d2c1f6e-4b1a-5e0c-9a57-2f0b7c3e9d41")


def anchor_date(seed: int) -> date:
    """The world's 'today': fixed per seed, so a reload months later generates the same dates."""
    return BASE_ANCHOR - timedelta(days=seed % 28)


def dicom_uid(seed: int, *parts: object) -> str:
    """A DICOM UID under ``2.25.`` from a name-based UUID of the seed and ``parts``: stable across runs."""
    return "2.25." + str(uuid.uuid5(_UID_NAMESPACE, "|".join(map(str, (seed, *parts)))).int)


@dataclass(frozen=True)
class ImagePlan:
    """Image sizes for a scale."""

    ct_matrix: int
    ct_slice_mm: float
    mr_matrix: int
    mr_factor: float
    xr_matrix: int

    @property
    def tag(self) -> str:
        return f"ct{self.ct_matrix}x{self.ct_slice_mm:g}-mr{self.mr_matrix}x{self.mr_factor:g}-xr{self.xr_matrix}"


def image_plan(scale: float) -> ImagePlan:
    if scale < 0.5:
        return ImagePlan(128, 10.0, 128, 0.5, 384)
    if scale < 2:
        return ImagePlan(256, 5.0, 256, 1.0, 1024)
    if scale < 8:
        return ImagePlan(256, 2.5, 256, 1.5, 1536)
    return ImagePlan(512, 1.25, 384, 2.0, 2048)


@dataclass(frozen=True)
class Hospital:
    code: str
    name: str
    city: str
    level: str
    alliance: str | None
    xr_modality: str  # "DX" or "CR"
    name_style: int
    item_codes: dict[str, str] = field(hash=False)

    @property
    def has_ct_mr(self) -> bool:
        return self.level != "一级"

    def item_name(self, item: ExamItem) -> str:
        return item.names[self.name_style % len(item.names)]


@dataclass(frozen=True)
class Patient:
    key: str  # the world's own handle (P0001), never sent anywhere
    surname: str
    given: str
    sex: str
    birth_date: date
    id_number: str | None
    phone: str | None
    city: str

    @property
    def name(self) -> str:
        return self.surname + self.given

    def age_on(self, day: date) -> int:
        return day.year - self.birth_date.year - ((day.month, day.day) < (self.birth_date.month, self.birth_date.day))


@dataclass(frozen=True)
class SeriesPlan:
    uid: str
    number: int
    template: SeriesTemplate
    modality: str
    body_part: str
    frame_of_reference_uid: str
    instances: int
    rows: int
    columns: int
    pixel_mm: float
    slice_mm: float  # slice spacing (0 for radiographs)

    @property
    def description(self) -> str:
        if self.modality == "CT":
            return f"{self.template.description} {self.slice_mm:g}mm"
        return self.template.description

    def instance_uid(self, seed: int, index: int) -> str:
        return dicom_uid(seed, "sop", self.uid, index)


@dataclass(frozen=True)
class Amendment:
    signed_at: datetime
    author_id: str
    text: ReportText
    reason: str


@dataclass(frozen=True)
class Report:
    report_id: str
    author_id: str
    signed_at: datetime
    text: ReportText
    amendment: Amendment | None = None


@dataclass(frozen=True)
class Study:
    uid: str
    accession: str
    performed_at: datetime
    description: str
    series: tuple[SeriesPlan, ...]
    finding: str
    finding_side: str | None = None  # where synthetic anatomy draws the lesion
    finding_size: int | None = None


@dataclass(frozen=True)
class Order:
    order_id: str
    accession: str
    hospital: str
    item_key: str
    local_code: str
    local_name: str
    modality: str
    ordered_at: datetime
    doctor_id: str
    cancelled_at: datetime | None = None
    cancel_reason: str | None = None
    study: Study | None = None
    report: Report | None = None


@dataclass(frozen=True)
class Visit:
    visit_id: str
    hospital: str
    patient_key: str
    mrn: str  # the hospital's own patient ID
    identified: bool  # False: the hospital has no ID number for this visit (hospital-scoped person key)
    patient_class: str
    department: str
    doctor_id: str
    started_at: datetime
    orders: tuple[Order, ...]


@dataclass(frozen=True)
class Link:
    """The hospital found the ID number of a person it knew only by its own patient ID."""

    hospital: str
    patient_key: str
    mrn: str
    at: datetime
    method: str


@dataclass(frozen=True)
class World:
    seed: int
    scale: float
    anchor: date
    plan: ImagePlan
    hospitals: tuple[Hospital, ...]
    patients: tuple[Patient, ...]
    visits: tuple[Visit, ...]
    links: tuple[Link, ...]
    repeat_patient: str  # key of the multi-hospital chest-CT patient

    def hospital(self, code: str) -> Hospital:
        return next(h for h in self.hospitals if h.code == code)

    def patient(self, key: str) -> Patient:
        return next(p for p in self.patients if p.key == key)

    def orders(self) -> list[tuple[Visit, Order]]:
        return [(v, o) for v in self.visits for o in v.orders]

    def studies(self) -> list[tuple[Visit, Order, Study]]:
        return [(v, o, o.study) for v, o in self.orders() if o.study is not None]
