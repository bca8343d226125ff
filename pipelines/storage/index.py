"""The instance index: which object holds which DICOM instance, and what we know about each study.

One row per *version* of an instance. An instance's identity is its SOP Instance UID; a version's identity is the
SHA-256 of its dataset bytes as sent (see :mod:`pipelines.dicom.parse`). Re-sending the same bytes changes
nothing; different bytes under a known SOP Instance UID become version n+1 and the old object stays.

No personal data lives here: the person is the partition key (an HMAC), never the name or ID.
SQLAlchemy Core: SQLite by default, PostgreSQL in production.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Iterable, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Engine

md = sa.MetaData()

instances = sa.Table(
    "dicom_instances",
    md,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("study_uid", sa.String(64), nullable=False, index=True),
    sa.Column("series_uid", sa.String(64), nullable=False),
    sa.Column("sop_uid", sa.String(64), nullable=False, index=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sop_class_uid", sa.String(64), nullable=False),
    sa.Column("transfer_syntax", sa.String(64), nullable=False),
    sa.Column("object_sha256", sa.String(64), nullable=False),
    sa.Column("dataset_sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("received_at", sa.String(40), nullable=False),
    sa.Column("hospital", sa.String(32), nullable=False),
    sa.Column("source_ae", sa.String(16), nullable=False),
    sa.Column("modality", sa.String(16)),
    sa.Column("instance_number", sa.Integer),
    # outbox: what the events of this version must say, and whether they are on the log yet
    sa.Column("opened_study", sa.Boolean, nullable=False, default=False),
    sa.Column("reopened_manifest_sha256", sa.String(64)),  # set when this version re-opened a completed study
    sa.Column("previous_object_sha256", sa.String(64)),  # set for version > 1
    sa.Column("published", sa.Boolean, nullable=False, default=False, index=True),
    sa.UniqueConstraint("sop_uid", "dataset_sha256", name="uq_instance_version_content"),
    sa.UniqueConstraint("sop_uid", "version", name="uq_instance_version"),
)

studies = sa.Table(
    "dicom_studies",
    md,
    sa.Column("study_uid", sa.String(64), primary_key=True),
    sa.Column("hospital", sa.String(32), nullable=False),
    sa.Column("person_key", sa.String(80), nullable=False, index=True),  # a patient's own studies
    sa.Column("accession_number", sa.String(64)),
    sa.Column("study_date", sa.String(10)),
    sa.Column("description", sa.String(256)),
    sa.Column("first_received_at", sa.String(40), nullable=False),
    sa.Column("last_received_at", sa.String(40), nullable=False),  # kept at re-opening; see last_received()
    # completion state, owned by pipelines.dicom.completion
    sa.Column("status", sa.String(16), nullable=False, default="open"),  # open | completed | reopened
    sa.Column("expected_instances", sa.Integer),
    sa.Column("expected_source", sa.String(32)),
    sa.Column("completed_at", sa.String(40)),
    sa.Column("completed_manifest_sha256", sa.String(64)),
    sa.Column("completions", sa.Integer, nullable=False, default=0),
)

Outcome = Literal["stored", "duplicate", "new_version"]


@dataclass(frozen=True)
class InstanceRow:
    study_uid: str
    series_uid: str
    sop_uid: str
    version: int
    sop_class_uid: str
    transfer_syntax: str
    object_sha256: str
    dataset_sha256: str
    size: int
    received_at: str
    hospital: str
    source_ae: str
    modality: str | None = None
    instance_number: int | None = None


@dataclass(frozen=True)
class StudyFacts:
    """Study-level attributes taken from the first instance (no personal data)."""

    study_uid: str
    hospital: str
    person_key: str
    accession_number: str | None = None
    study_date: date | None = None
    description: str | None = None


@dataclass(frozen=True)
class RecordOutcome:
    outcome: Outcome
    version: int
    first_in_study: bool  # this instance opened a study we had never seen
    study_status: str  # the study's completion status before this instance
    previous_sha256: str | None = None  # object replaced by a new version
    object_sha256: str | None = None  # for a duplicate: the object already holding these bytes
    reopened_manifest_sha256: str | None = None  # this version re-opened a completed study ("" if no manifest)


@dataclass(frozen=True)
class StudyRow:
    study_uid: str
    hospital: str
    person_key: str
    accession_number: str | None
    study_date: str | None
    description: str | None
    first_received_at: str
    last_received_at: str
    status: str
    expected_instances: int | None
    expected_source: str | None
    completed_at: str | None
    completed_manifest_sha256: str | None
    completions: int


def _instance(row) -> InstanceRow:
    return InstanceRow(**{k: row._mapping[k] for k in InstanceRow.__dataclass_fields__})


def utcnow_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


# Built once: constructing SQLAlchemy statements per instance cost more CPU than the database work itself.
_VERSIONS = (sa.select(instances.c.version, instances.c.dataset_sha256, instances.c.object_sha256)
             .where(instances.c.sop_uid == sa.bindparam("sop")).order_by(instances.c.version))
_STUDY_STATUS = (sa.select(studies.c.status, studies.c.completed_manifest_sha256)
                 .where(studies.c.study_uid == sa.bindparam("study")))
_INSERT_INSTANCE = instances.insert()


class InstanceIndex:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        md.create_all(engine)
        # SQLite allows one writer; serialising here avoids "database is locked" under many associations.
        self._write_lock = threading.Lock()

    def record(self, row: InstanceRow, study: StudyFacts) -> RecordOutcome:
        """Add an instance version unless these exact bytes are already indexed under its SOP Instance UID."""
        with self._write_lock, self.engine.begin() as conn:
            known = conn.execute(_VERSIONS, {"sop": row.sop_uid}).all()
            srow = conn.execute(_STUDY_STATUS, {"study": row.study_uid}).first()
            status = srow.status if srow else "open"
            for version, dataset_sha, object_sha in known:
                if dataset_sha == row.dataset_sha256:
                    return RecordOutcome("duplicate", version, False, status, object_sha256=object_sha)
            version = (known[-1].version + 1) if known else 1
            reopened = (srow.completed_manifest_sha256 or "") if srow is not None and status == "completed" else None
            values = {**row.__dict__, "version": version, "opened_study": srow is None, "published": False,
                      "previous_object_sha256": known[-1].object_sha256 if known else None,
                      "reopened_manifest_sha256": reopened}
            conn.execute(_INSERT_INSTANCE, values)
            if srow is None:
                conn.execute(
                    studies.insert().values(
                        study_uid=study.study_uid,
                        hospital=study.hospital,
                        person_key=study.person_key,
                        accession_number=study.accession_number,
                        study_date=study.study_date.isoformat() if study.study_date else None,
                        description=study.description,
                        first_received_at=row.received_at,
                        last_received_at=row.received_at,
                        status="open",
                        completions=0,
                    )
                )
            elif status == "completed":
                conn.execute(studies.update().where(studies.c.study_uid == row.study_uid)
                             .values(status="reopened", last_received_at=row.received_at))
        outcome: Outcome = "new_version" if known else "stored"
        return RecordOutcome(outcome, version, srow is None, status, known[-1].object_sha256 if known else None,
                             reopened_manifest_sha256=reopened)

    # ------------------------------------------------------------------ reads

    def instances_of(self, study_uid: str, *, all_versions: bool = False) -> list[InstanceRow]:
        """The current version of every instance of a study (or every version)."""
        q = sa.select(instances).where(instances.c.study_uid == study_uid)
        with self.engine.connect() as conn:
            rows = [_instance(r) for r in conn.execute(q)]
        if all_versions:
            return sorted(rows, key=lambda r: (r.series_uid, r.sop_uid, r.version))
        latest: dict[str, InstanceRow] = {}
        for r in rows:
            if r.sop_uid not in latest or r.version > latest[r.sop_uid].version:
                latest[r.sop_uid] = r
        return sorted(latest.values(), key=lambda r: (r.series_uid, r.sop_uid))

    def find_version(self, sop_uid: str, dataset_sha256: str) -> tuple[int, str] | None:
        """(version, object hash) of these exact dataset bytes under this SOP Instance UID, if indexed."""
        with self.engine.connect() as conn:
            for version, dataset_sha, object_sha in conn.execute(_VERSIONS, {"sop": sop_uid}):
                if dataset_sha == dataset_sha256:
                    return version, object_sha
        return None

    def versions_of(self, sop_uid: str) -> list[InstanceRow]:
        q = sa.select(instances).where(instances.c.sop_uid == sop_uid).order_by(instances.c.version)
        with self.engine.connect() as conn:
            return [_instance(r) for r in conn.execute(q)]

    def study(self, study_uid: str) -> StudyRow | None:
        with self.engine.connect() as conn:
            r = conn.execute(sa.select(studies).where(studies.c.study_uid == study_uid)).first()
        return StudyRow(**{k: r._mapping[k] for k in StudyRow.__dataclass_fields__}) if r else None

    def study_uids_of(self, person_keys: Iterable[str]) -> list[str]:
        """The studies stored under any of these person keys (a person and the hospital records linked to them)."""
        keys = sorted(set(person_keys))
        if not keys:
            return []
        with self.engine.connect() as conn:
            return list(conn.execute(sa.select(studies.c.study_uid).where(studies.c.person_key.in_(keys))
                                     .order_by(studies.c.study_uid)).scalars())

    def studies_in(self, *statuses: str) -> list[StudyRow]:
        q = sa.select(studies).order_by(studies.c.first_received_at)
        if statuses:
            q = q.where(studies.c.status.in_(statuses))
        with self.engine.connect() as conn:
            return [StudyRow(**{k: r._mapping[k] for k in StudyRow.__dataclass_fields__}) for r in conn.execute(q)]

    def last_received(self, study_uid: str) -> str | None:
        """When the latest instance of a study arrived (not kept on the study row: one write less per instance)."""
        q = sa.select(sa.func.max(instances.c.received_at)).where(instances.c.study_uid == study_uid)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar()

    def count_instances(self, study_uid: str) -> int:
        q = sa.select(sa.func.count(sa.distinct(instances.c.sop_uid))).where(instances.c.study_uid == study_uid)
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one()

    # ------------------------------------------------------------------ outbox

    def unpublished(self, limit: int = 1000) -> list[dict]:
        """Versions whose events are not on the log yet, oldest first, with their study's person and facts."""
        q = (sa.select(instances, studies.c.person_key, studies.c.accession_number, studies.c.study_date)
             .join(studies, studies.c.study_uid == instances.c.study_uid)
             .where(instances.c.published == sa.false()).order_by(instances.c.id).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(q)]

    def mark_published(self, ids: list[int]) -> None:
        if not ids:
            return
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(instances.update().where(instances.c.id.in_(ids)).values(published=True))

    # ------------------------------------------------------------------ completion state

    def set_expected(self, study_uid: str, count: int, source: str) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                studies.update().where(studies.c.study_uid == study_uid)
                .values(expected_instances=count, expected_source=source)
            )

    def mark_completed(self, study_uid: str, manifest_sha256: str, at: str | None = None) -> None:
        with self._write_lock, self.engine.begin() as conn:
            conn.execute(
                studies.update().where(studies.c.study_uid == study_uid).values(
                    status="completed", completed_at=at or utcnow_iso(), completed_manifest_sha256=manifest_sha256,
                    completions=studies.c.completions + 1,
                )
            )
