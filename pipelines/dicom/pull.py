"""Pulling from a hospital PACS that cannot push: DIMSE query/retrieve and Orthanc's ``/changes`` feed.

- :class:`PacsPeer` runs C-FIND (study level, by study date range or accession number) and C-MOVE to our own
  C-STORE SCP; the PACS must know our AE title as a move destination. The instances then arrive through the SCP
  like any push, and NumberOfStudyRelatedInstances from the C-FIND becomes the study's expected count.
- :class:`OrthancPoller` follows an Orthanc server's change log: each ``NewInstance`` is fetched as the file
  Orthanc holds (``/instances/{id}/file``) and stored byte for byte; ``StableStudy`` gives the study's instance
  count from ``/studies/{id}/statistics``. The position in the change log is kept, so a restart resumes.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date

import httpx
import sqlalchemy as sa
from pydicom.dataset import Dataset
from pynetdicom import AE
from pynetdicom.sop_class import StudyRootQueryRetrieveInformationModelFind, StudyRootQueryRetrieveInformationModelMove

from pipelines.dicom.completion import CompletionDriver
from pipelines.dicom.ingest import DicomIngest
from pipelines.dicom.parse import DicomRejected

log = logging.getLogger(__name__)


class PullError(RuntimeError):
    pass


@dataclass(frozen=True)
class FoundStudy:
    study_uid: str
    study_date: str | None
    accession_number: str | None
    modalities: str | None
    instance_count: int | None


@dataclass
class PacsPeer:
    host: str
    port: int
    called_ae: str
    calling_ae: str = "WANYING"
    timeout: float = 30.0

    def _associate(self, context):
        ae = AE(ae_title=self.calling_ae)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = self.timeout
        ae.add_requested_context(context)
        assoc = ae.associate(self.host, self.port, ae_title=self.called_ae)
        if not assoc.is_established:
            raise PullError(f"PACS {self.called_ae}@{self.host}:{self.port} refused or did not answer the association")
        return assoc

    def find_studies(self, *, date_from: date | None = None, date_to: date | None = None,
                     accession_number: str | None = None, study_uid: str | None = None) -> list[FoundStudy]:
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid or ""
        query.AccessionNumber = accession_number or ""
        query.StudyDate = _date_range(date_from, date_to)
        query.ModalitiesInStudy = ""
        query.NumberOfStudyRelatedInstances = ""
        assoc = self._associate(StudyRootQueryRetrieveInformationModelFind)
        found = []
        try:
            for status, identifier in assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind):
                if status is None:
                    raise PullError("C-FIND: no answer from the PACS (timeout or aborted)")
                if status.Status in (0xFF00, 0xFF01) and identifier is not None:
                    found.append(FoundStudy(
                        study_uid=str(identifier.get("StudyInstanceUID", "")),
                        study_date=str(identifier.get("StudyDate", "")) or None,
                        accession_number=str(identifier.get("AccessionNumber", "")) or None,
                        modalities="\\".join(identifier.get("ModalitiesInStudy", [])) if isinstance(
                            identifier.get("ModalitiesInStudy"), (list, tuple)) else
                        (str(identifier.get("ModalitiesInStudy", "")) or None),
                        instance_count=_int(identifier.get("NumberOfStudyRelatedInstances")),
                    ))
                elif status.Status not in (0x0000, 0xFF00, 0xFF01):
                    raise PullError(f"C-FIND failed with status 0x{status.Status:04X}")
        finally:
            assoc.release()
        return [f for f in found if f.study_uid]

    def move_study(self, study_uid: str, destination_ae: str) -> tuple[int, int]:
        """C-MOVE one study to ``destination_ae``; returns (completed, failed) sub-operations."""
        query = Dataset()
        query.QueryRetrieveLevel = "STUDY"
        query.StudyInstanceUID = study_uid
        assoc = self._associate(StudyRootQueryRetrieveInformationModelMove)
        completed = failed = 0
        try:
            for status, _ in assoc.send_c_move(query, destination_ae, StudyRootQueryRetrieveInformationModelMove):
                if status is None:
                    raise PullError("C-MOVE: no answer from the PACS (timeout or aborted)")
                completed = int(status.get("NumberOfCompletedSuboperations", completed) or completed)
                failed = int(status.get("NumberOfFailedSuboperations", failed) or failed)
                if status.Status not in (0x0000, 0xFF00, 0xB000):
                    raise PullError(f"C-MOVE failed with status 0x{status.Status:04X}: "
                                    f"{status.get('ErrorComment', '')}")
        finally:
            assoc.release()
        return completed, failed

    def pull_by_date(self, date_from: date, date_to: date, destination_ae: str,
                     completion: CompletionDriver | None = None) -> list[FoundStudy]:
        """Find the studies of a date range and move each one to us; their counts become expected counts."""
        studies = self.find_studies(date_from=date_from, date_to=date_to)
        for study in studies:
            self.move_study(study.study_uid, destination_ae)
            if completion is not None and study.instance_count is not None:
                completion.expect(study.study_uid, study.instance_count, "c-find")
        return studies

    def expected_count(self, study_uid: str) -> tuple[int, str] | None:
        """An expected-count source for :class:`CompletionDriver`."""
        found = self.find_studies(study_uid=study_uid)
        if found and found[0].instance_count is not None:
            return found[0].instance_count, "c-find"
        return None


def _date_range(start: date | None, end: date | None) -> str:
    if not start and not end:
        return ""
    fmt = (lambda d: d.strftime("%Y%m%d") if d else "")
    return f"{fmt(start)}-{fmt(end)}"


def _int(value) -> int | None:
    try:
        return int(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


# ---------------------------------------------------------------------------------------------------- Orthanc

_md = sa.MetaData()
cursors = sa.Table(
    "pull_cursors", _md,
    sa.Column("source", sa.String(200), primary_key=True),
    sa.Column("position", sa.BigInteger, nullable=False),
)


class OrthancPoller:
    def __init__(self, url: str, *, hospital: str, ingest: DicomIngest, completion: CompletionDriver | None = None,
                 engine: sa.engine.Engine | None = None, auth: tuple[str, str] | None = None,
                 timeout: float = 30.0) -> None:
        self.url, self.hospital, self.ingest, self.completion = url.rstrip("/"), hospital, ingest, completion
        self.http = httpx.Client(base_url=self.url, auth=auth, timeout=timeout)
        self.engine = engine or ingest.index.engine
        _md.create_all(self.engine)
        self.cursor_name = f"orthanc:{self.url}"

    @property
    def position(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(cursors.c.position).where(cursors.c.source == self.cursor_name)).scalar()
        return value or 0

    def _save(self, position: int) -> None:
        with self.engine.begin() as conn:
            updated = conn.execute(cursors.update().where(cursors.c.source == self.cursor_name)
                                   .values(position=position)).rowcount
            if not updated:
                conn.execute(cursors.insert().values(source=self.cursor_name, position=position))

    def poll_once(self, limit: int = 100) -> dict[str, int]:
        """Process one page of changes; returns counts by outcome. Safe to call again after any failure."""
        counts = {"stored": 0, "duplicate": 0, "new_version": 0, "rejected": 0, "stable": 0}
        page = self._get(f"/changes?since={self.position}&limit={limit}").json()
        for change in page.get("Changes", []):
            kind = change.get("ChangeType")
            if kind == "NewInstance":
                data = self._get(f"/instances/{change['ID']}/file").content
                try:
                    accepted = self.ingest.receive_file(data, hospital=self.hospital, source_ae="orthanc-rest")
                    counts[accepted.outcome.outcome] += 1
                except DicomRejected:
                    counts["rejected"] += 1  # kept in the dead-letter store by the ingest
            elif kind == "StableStudy" and self.completion is not None:
                uid = self._get(f"/studies/{change['ID']}").json()["MainDicomTags"]["StudyInstanceUID"]
                stats = self._get(f"/studies/{change['ID']}/statistics").json()
                self.completion.expect(uid, int(stats["CountInstances"]), "orthanc")
                counts["stable"] += 1
            self._save(int(change["Seq"]))
        if not page.get("Changes"):
            self._save(max(self.position, int(page.get("Last", 0))))
        counts["done"] = int(bool(page.get("Done", True)))
        return counts

    def poll_until_done(self, max_pages: int = 10_000) -> dict[str, int]:
        total: dict[str, int] = {}
        for _ in range(max_pages):
            counts = self.poll_once()
            for k, v in counts.items():
                total[k] = total.get(k, 0) + v
            if counts["done"]:
                break
        return total

    def _get(self, path: str) -> httpx.Response:
        response = self.http.get(path)
        if response.status_code != 200:
            raise PullError(f"Orthanc {path} answered {response.status_code}: {response.text[:200]}")
        return response

    def close(self) -> None:
        self.http.close()
