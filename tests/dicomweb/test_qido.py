"""QIDO-RS matching on a few studies; the catalog keeps no name or patient ID in clear."""
from __future__ import annotations

from datetime import date

import pytest

from pipelines.dicom.synthetic import ct_series
from pipelines.dicomweb.query import QueryError, date_range, name_terms, parse_query, pn_matches, query_terms
from tests.dicomweb.conftest import ingest_files


@pytest.fixture(scope="module")
def studies(centre, tmp_path_factory):
    """Three more studies: names, dates, modalities and accessions to tell apart."""
    import pydicom

    tmp = tmp_path_factory.mktemp("qido")
    made = {}
    for key, pid, name, day, acc, modality in (
            ("wang", "MRN-W1", "WANG^XIAOMING=王^小明", date(2026, 1, 5), "ACC-W1", "MR"),
            ("wangli", "MRN-W2", "WANG^LI", date(2026, 3, 9), "ACC-W2", "CT"),
            ("zhang", "MRN-Z1", "ZHANG^WEI", date(2025, 12, 30), "ACC-Z1", "CR")):
        paths = ct_series(tmp / key, slices=2, size=16, patient_id=pid, accession=acc, study_date=day)
        for p in paths:
            ds = pydicom.dcmread(p)
            ds.PatientName, ds.Modality = name, modality
            ds.SpecificCharacterSet = "ISO_IR 192"
            ds.save_as(p, enforce_file_format=True)
        ingest_files(centre.platform, paths)
        made[key] = pydicom.dcmread(paths[0]).StudyInstanceUID
    return made


def _find(centre, **params) -> list[str]:
    with centre.client() as http:
        resp = http.get("/studies", params=params)
    assert resp.status_code in (200, 204), resp.text
    return [] if resp.status_code == 204 else [s["0020000D"]["Value"][0] for s in resp.json()]


def test_matching(centre, studies):
    w, wl, z = studies["wang"], studies["wangli"], studies["zhang"]
    assert _find(centre, PatientID="MRN-W1") == [w]
    assert _find(centre, PatientID="MRN-W*") == [wl, w]  # wildcard: checked on the originals; newest first
    assert _find(centre, PatientName="WANG^LI") == [wl]
    assert _find(centre, PatientName="wang^li") == [wl]  # names match case-insensitively
    assert set(_find(centre, PatientName="WANG*")) == {w, wl}
    assert _find(centre, PatientName="*MING") == [w]  # leading wildcard: scanned on the originals
    assert _find(centre, PatientName="xiao", fuzzymatching="true") == [w]
    assert _find(centre, PatientName="王^小明") == [w]  # the ideographic group
    assert _find(centre, PatientName="WANG^XIAO") == []  # exact means exact
    assert _find(centre, StudyDate="20260101-20260331") == [wl, w]
    assert _find(centre, StudyDate="-20251231") == [z]
    assert _find(centre, StudyDate="20260309") == [wl]
    assert set(_find(centre, ModalitiesInStudy="MR,CR")) == {w, z}
    assert set(_find(centre, ModalitiesInStudy="CT", PatientID="MRN-W2")) == {wl}
    assert _find(centre, AccessionNumber="ACC-Z1") == [z]
    assert _find(centre, AccessionNumber="ACC-?1", PatientID="MRN-Z1") == [z]
    assert set(_find(centre, StudyInstanceUID=f"{w},{z}")) == {w, z}
    assert _find(centre, PatientName="NOBODY") == []


def test_paging_includefield_and_counts(centre, studies):
    everything = _find(centre, limit="100")
    assert set(studies.values()) | {centre.study} <= set(everything)
    assert _find(centre, limit="2", offset="1") == everything[1:3]
    with centre.client() as http:
        [doc] = http.get("/studies", params={"PatientID": "MRN-W1", "includefield": "PatientSex,00180050"}).json()
    assert doc["00100040"]["Value"] == ["O"] and "00180050" in doc
    assert doc["00080061"]["Value"] == ["MR"] and doc["00201208"]["Value"] == [2]
    assert doc["00100010"]["Value"][0]["Ideographic"] == "王^小明"
    with centre.client() as http:
        bad = http.get("/studies", params={"StudyDate": "2026-01-01x"})
        assert bad.status_code == 400 and "range" in bad.json()["detail"]
        assert http.get("/studies", params={"NoSuchKeyword": "1"}).status_code == 400


def test_series_and_instance_levels(centre, studies):
    with centre.client() as http:
        series = http.get(f"/studies/{studies['zhang']}/series").json()
        assert [s["00080060"]["Value"] for s in series] == [["CR"]]
        assert series[0]["00201209"]["Value"] == [2]
        inst = http.get("/instances", params={"PatientID": "MRN-Z1", "InstanceNumber": "2"}).json()
        assert len(inst) == 1 and inst[0]["00200013"]["Value"] == [2]


def test_the_catalog_holds_no_name_or_patient_id_in_clear(centre, studies):
    db = centre.platform.settings.data_dir / "dicom-index.sqlite"
    raw = db.read_bytes() + (db.parent / "dicom-index.sqlite-wal").read_bytes() if (
        db.parent / "dicom-index.sqlite-wal").exists() else db.read_bytes()
    for secret in (b"XIAOMING", "小明".encode(), b"MRN-W1", b"ZHANG^WEI", b"TEST^PATIENT"):
        assert secret not in raw


def test_pure_matching_functions():
    assert pn_matches("wang*", "WANG^XIAOMING", False) and not pn_matches("LI*", "WANG^XIAOMING", False)
    assert pn_matches("xiao wa", "WANG^XIAOMING", True)
    assert date_range("20260101-") == ("20260101", None) and date_range("-20260101") == (None, "20260101")
    with pytest.raises(QueryError):
        date_range("yesterday")
    assert set(query_terms("WANG^X*", False)) <= name_terms("WANG^XIAOMING")
    assert query_terms("*MING", False) is None
    with pytest.raises(QueryError):
        parse_query("study", [("limit", "0")])


def test_query_strings_never_reach_the_access_log():
    import logging

    from pipelines.dicomweb.access_log import RedactQuery

    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5", "GET", "/dicomweb/studies?PatientName=WANG%5EXIAOMING", "1.1", 200),
                               None)
    assert RedactQuery().filter(record)
    assert "WANG" not in record.getMessage() and "/dicomweb/studies?[query redacted]" in record.getMessage()
