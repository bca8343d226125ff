"""The QIDO catalog: a projection of the instance index plus the DICOM attributes queries match on.

One row per current instance version, rebuilt from the index and the originals at any time (``rebuild``), kept up
to date by :meth:`Catalog.sync`, which reads index rows it has not seen yet (by their autoincrement id) and the
header of each new object. It lives in the index's database.

Personal data: the catalog holds no name and no patient ID in clear. PatientID is kept as an HMAC token (exact
matching); a patient's name as HMAC tokens of each whole name and of each word's prefixes (``name_terms``), enough
to narrow a name query to a few candidate studies. Every candidate is then checked against the name in the DICOM
original itself (which legitimately holds it), so wildcard and fuzzy semantics are exact and no view, log or
table ever stores the name. A pattern that cannot be narrowed (a leading wildcard) is checked on the originals of
the candidates the other keys leave, up to ``MAX_SCAN`` of them; beyond that the query is refused with a reason.
Rotating the token key means rebuilding the catalog.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from pipelines.crypto import Keyring
from pipelines.dicomweb.query import name_terms
from pipelines.dicomweb.reading import ObjectReader
from pipelines.storage.index import instances as index_instances

log = logging.getLogger(__name__)
md = sa.MetaData()

catalog = sa.Table(
    "dicomweb_catalog", md,
    sa.Column("sop_uid", sa.String(64), primary_key=True),
    sa.Column("index_id", sa.Integer, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("study_uid", sa.String(64), nullable=False, index=True),
    sa.Column("series_uid", sa.String(64), nullable=False, index=True),
    sa.Column("sop_class_uid", sa.String(64), nullable=False),
    sa.Column("transfer_syntax", sa.String(64), nullable=False),
    sa.Column("object_sha256", sa.String(64), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("hospital", sa.String(32), nullable=False),
    sa.Column("study_date", sa.String(8), index=True),
    sa.Column("study_time", sa.String(16)),
    sa.Column("accession_number", sa.String(64), index=True),
    sa.Column("study_id", sa.String(16)),
    sa.Column("study_description", sa.String(64)),
    sa.Column("modality", sa.String(16), index=True),
    sa.Column("series_number", sa.Integer),
    sa.Column("series_description", sa.String(64)),
    sa.Column("instance_number", sa.Integer),
    sa.Column("number_of_frames", sa.Integer),
    sa.Column("patient_id_token", sa.String(90), index=True),
)
name_tokens = sa.Table(
    "dicomweb_name_tokens", md,
    sa.Column("token", sa.String(90), primary_key=True),
    sa.Column("study_uid", sa.String(64), primary_key=True),
)
state = sa.Table(
    "dicomweb_catalog_state", md,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("value", sa.Integer, nullable=False),
)

# query key (tag) -> catalog column, for the attributes matched in SQL
COLUMNS = {
    "0020000D": "study_uid", "0020000E": "series_uid", "00080018": "sop_uid", "00080016": "sop_class_uid",
    "00080020": "study_date", "00080030": "study_time", "00080050": "accession_number", "00200010": "study_id",
    "00081030": "study_description", "00080060": "modality", "00200011": "series_number",
    "0008103E": "series_description", "00200013": "instance_number",
}
PATIENT_ID = "00100020"
PATIENT_NAME = "00100010"
MODALITIES_IN_STUDY = "00080061"


@dataclass(frozen=True)
class CatalogRow:
    sop_uid: str
    study_uid: str
    series_uid: str
    sop_class_uid: str
    transfer_syntax: str
    object_sha256: str
    size: int
    modality: str | None
    series_number: int | None
    instance_number: int | None
    number_of_frames: int | None


ROW_COLUMNS = [catalog.c[name] for name in CatalogRow.__dataclass_fields__]


def patient_id_token(keys: Keyring, patient_id: str) -> str:
    return keys.token("dicom-patient-id", patient_id.strip())


def name_token(keys: Keyring, term: str) -> str:
    return keys.token("dicom-patient-name", term)


def _text(ds, keyword: str, size: int) -> str | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    return str(value).strip()[:size] or None


def _int(ds, keyword: str) -> int | None:
    try:
        value = ds.get(keyword)
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


class Catalog:
    def __init__(self, engine: Engine, reader: ObjectReader, keys: Keyring) -> None:
        self.engine, self.reader, self.keys = engine, reader, keys
        md.create_all(engine)
        self._lock = threading.Lock()

    def sync(self, batch: int = 500) -> int:
        """Project index rows added since the last call; returns how many instances were (re)catalogued."""
        done = 0
        with self._lock:
            while True:
                with self.engine.connect() as conn:
                    mark = conn.execute(sa.select(state.c.value).where(state.c.name == "index_id")).scalar() or 0
                    rows = conn.execute(sa.select(index_instances).where(index_instances.c.id > mark)
                                        .order_by(index_instances.c.id).limit(batch)).mappings().all()
                if not rows:
                    return done
                records, terms = [], set()
                for r in rows:
                    try:
                        ds = self.reader.header(r["object_sha256"])
                    except Exception as exc:  # a missing or unreadable object must not stop the projection
                        log.error("catalog: cannot read object %s of %s: %s", r["object_sha256"], r["sop_uid"], exc)
                        continue
                    records.append(self._record(r, ds))
                    name = ds.get("PatientName")
                    if name:
                        terms |= {(name_token(self.keys, t), r["study_uid"]) for t in name_terms(str(name))}
                done += self._write(records, terms, rows[-1]["id"])

    def _record(self, r, ds) -> dict:
        pid = _text(ds, "PatientID", 64)
        return {
            "sop_uid": r["sop_uid"], "index_id": r["id"], "version": r["version"], "study_uid": r["study_uid"],
            "series_uid": r["series_uid"], "sop_class_uid": r["sop_class_uid"],
            "transfer_syntax": r["transfer_syntax"], "object_sha256": r["object_sha256"], "size": r["size"],
            "hospital": r["hospital"], "study_date": _text(ds, "StudyDate", 8),
            "study_time": _text(ds, "StudyTime", 16), "accession_number": _text(ds, "AccessionNumber", 64),
            "study_id": _text(ds, "StudyID", 16), "study_description": _text(ds, "StudyDescription", 64),
            "modality": _text(ds, "Modality", 16), "series_number": _int(ds, "SeriesNumber"),
            "series_description": _text(ds, "SeriesDescription", 64),
            "instance_number": _int(ds, "InstanceNumber"), "number_of_frames": _int(ds, "NumberOfFrames"),
            "patient_id_token": patient_id_token(self.keys, pid) if pid else None,
        }

    def _write(self, records: list[dict], terms: set[tuple[str, str]], mark: int) -> int:
        with self.engine.begin() as conn:
            if records:
                sops = [r["sop_uid"] for r in records]
                known = dict(conn.execute(sa.select(catalog.c.sop_uid, catalog.c.version)
                                          .where(catalog.c.sop_uid.in_(sops))).all())
                fresh = {}
                for r in records:  # the newest version of each instance wins
                    if r["version"] >= known.get(r["sop_uid"], 0) and r["version"] >= fresh.get(
                            r["sop_uid"], {"version": 0})["version"]:
                        fresh[r["sop_uid"]] = r
                if fresh:
                    conn.execute(catalog.delete().where(catalog.c.sop_uid.in_(list(fresh))))
                    conn.execute(catalog.insert(), list(fresh.values()))
            if terms:
                have = set(conn.execute(sa.select(name_tokens.c.token, name_tokens.c.study_uid).where(
                    name_tokens.c.study_uid.in_({s for _, s in terms}))).all())
                new = [{"token": t, "study_uid": s} for t, s in terms - have]
                if new:
                    conn.execute(name_tokens.insert(), new)
            if conn.execute(sa.select(state.c.value).where(state.c.name == "index_id")).first() is None:
                conn.execute(state.insert().values(name="index_id", value=mark))
            else:
                conn.execute(state.update().where(state.c.name == "index_id").values(value=mark))
        return len(records)

    def rebuild(self) -> int:
        with self._lock, self.engine.begin() as conn:
            for table in (catalog, name_tokens, state):
                conn.execute(table.delete())
        return self.sync()

    # ------------------------------------------------------------------ reads

    def rows(self, *conditions) -> list[CatalogRow]:
        q = sa.select(*ROW_COLUMNS).where(*conditions).order_by(
            catalog.c.series_number, catalog.c.series_uid, catalog.c.instance_number, catalog.c.sop_uid)
        with self.engine.connect() as conn:
            return [CatalogRow(*r) for r in conn.execute(q)]

    def series_rows(self, study_uid: str, series_uid: str) -> list[CatalogRow]:
        return self.rows(catalog.c.study_uid == study_uid, catalog.c.series_uid == series_uid)

    def study_rows(self, study_uid: str) -> list[CatalogRow]:
        return self.rows(catalog.c.study_uid == study_uid)

    def instance_row(self, study_uid: str, series_uid: str | None, sop_uid: str) -> CatalogRow | None:
        conds = [catalog.c.study_uid == study_uid, catalog.c.sop_uid == sop_uid]
        if series_uid:
            conds.append(catalog.c.series_uid == series_uid)
        found = self.rows(*conds)
        return found[0] if found else None
