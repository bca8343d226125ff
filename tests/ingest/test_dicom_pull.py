"""Pulling from a real Orthanc PACS: its /changes feed, and C-FIND + C-MOVE to our SCP."""
from __future__ import annotations

import hashlib
import os
import subprocess
import time
from datetime import date, datetime, timedelta, timezone

import httpx
import pydicom
import pytest

from pipelines.dicom.parse import split_part10
from pipelines.dicom.peers import PeerRegistry
from pipelines.dicom.pull import OrthancPoller, PacsPeer
from pipelines.dicom.scp import ScpConfig, StoreScp


def modality_sends_to_orthanc(orthanc, files) -> None:
    result = subprocess.run(["storescu", "-aet", "STORESCU", "-aec", orthanc.aet, "127.0.0.1",
                             str(orthanc.dicom_port), *map(str, files)], env={**os.environ, "TCP_NODELAY": "1"},
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert httpx.get(f"{orthanc.url}/statistics").json()["CountInstances"] == len(files)


def dataset_sha256(data: bytes) -> str:
    return hashlib.sha256(data[split_part10(data)[1]:]).hexdigest()


@pytest.mark.slow
def test_orthanc_changes_are_pulled_byte_for_byte_and_complete(dicom_stack, orthanc, ct_files):
    modality_sends_to_orthanc(orthanc, ct_files)
    poller = OrthancPoller(orthanc.url, hospital="AHSL", ingest=dicom_stack.ingest, completion=dicom_stack.completion)
    counts = poller.poll_until_done()
    assert counts["stored"] == len(ct_files) and counts["rejected"] == 0
    for f in ct_files:
        sop = str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        orthanc_id = httpx.post(f"{orthanc.url}/tools/lookup", content=sop).json()[0]["ID"]
        served = httpx.get(f"{orthanc.url}/instances/{orthanc_id}/file").content
        [row] = dicom_stack.index.versions_of(sop)
        # the file Orthanc served is our object, byte for byte; its dataset is the modality's file's dataset
        assert dicom_stack.store.get(row.object_sha256) == served
        assert row.object_sha256 == hashlib.sha256(served).hexdigest()
        assert row.dataset_sha256 == dataset_sha256(served) == dataset_sha256(f.read_bytes())
    assert poller.poll_once()["stored"] == 0  # resumes after the last change

    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not dicom_stack.index.studies_in()[0].expected_instances:
        time.sleep(0.5)
        poller.poll_until_done()  # StableStudy gives the count from Orthanc's statistics
    study = dicom_stack.index.studies_in()[0]
    assert (study.expected_instances, study.expected_source) == (len(ct_files), "orthanc")
    [done] = dicom_stack.completion.tick()
    assert done.payload["instance_count"] == len(ct_files)

    fresh = OrthancPoller(orthanc.url, hospital="AHSL", ingest=dicom_stack.ingest)  # a restart resumes
    assert fresh.position == poller.position and fresh.poll_once()["stored"] == 0


@pytest.mark.slow
def test_cfind_by_date_and_cmove_to_our_scp(dicom_stack, orthanc, ct_files):
    modality_sends_to_orthanc(orthanc, ct_files)
    peers = PeerRegistry.from_mapping({"AHSL": {"calling_aes": [orthanc.aet]}})
    scp = StoreScp(dicom_stack.ingest, ScpConfig(ae_title="WANYING", port=0, peers=peers))
    scp.start()
    try:
        httpx.put(f"{orthanc.url}/modalities/wanying",
                  json={"AET": "WANYING", "Host": "127.0.0.1", "Port": scp.port}).raise_for_status()
        httpx.put(f"{orthanc.url}/modalities/wanying-qr",
                  json={"AET": "WANYING_QR", "Host": "127.0.0.1", "Port": 9}).raise_for_status()
        pacs = PacsPeer("127.0.0.1", orthanc.dicom_port, orthanc.aet, calling_ae="WANYING_QR")
        assert pacs.find_studies(date_from=date(2025, 1, 1), date_to=date(2025, 12, 31)) == []
        studies = pacs.pull_by_date(date(2026, 11, 1), date(2026, 11, 3), "WANYING",
                                    completion=dicom_stack.completion)
        assert [s.instance_count for s in studies] == [len(ct_files)]
    finally:
        scp.stop()
    assert dicom_stack.ingest.counts["stored"] == len(ct_files)
    for f in ct_files:
        sop = str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        [row] = dicom_stack.index.versions_of(sop)
        assert row.dataset_sha256 == dataset_sha256(f.read_bytes()) and row.source_ae == orthanc.aet
    assert len(dicom_stack.events("InstanceStored")) == len(ct_files)
    [done] = dicom_stack.completion.tick(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert done.payload["instance_count"] == len(ct_files)
    assert dicom_stack.index.study(done.payload["study_uid"]).expected_source == "c-find"
