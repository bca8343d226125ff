"""End to end over real DIMSE: dcmtk storescu (a modality) -> our C-STORE SCP -> objects, index, events."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pynetdicom import AE

from pipelines.dicom.parse import split_part10
from pipelines.dicom.peers import PeerRegistry
from pipelines.dicom.scp import ScpConfig, StoreScp

PEERS = PeerRegistry.from_mapping({"AHSL": {"calling_aes": ["AHSL_CT1"]}, "AYFY": {"calling_aes": ["AYFY_PACS"]}})


@pytest.fixture
def scp(dicom_stack):
    server = StoreScp(dicom_stack.ingest, ScpConfig(ae_title="WANYING", port=0, peers=PEERS))
    server.start()
    yield server
    server.stop()


def storescu(port: int, files: list[Path], calling_ae: str, propose: str = "-x=") -> subprocess.CompletedProcess:
    """``propose``: the transfer syntax option matching the files (storescu transcodes to what is accepted);
    -R: only the contexts the files need; -nh: go on after a refusal."""
    return subprocess.run(["storescu", propose, "-R", "-nh", "-aet", calling_ae, "-aec", "WANYING", "127.0.0.1",
                           str(port),
                           *map(str, files)], env={**os.environ, "TCP_NODELAY": "1"}, capture_output=True,
                          text=True, timeout=120)


def dataset_sha256(data: bytes) -> str:
    return hashlib.sha256(data[split_part10(data)[1]:]).hexdigest()


def undefined_length_sequences(path: Path) -> bool:
    ds = pydicom.dcmread(path)
    return any(e.VR == "SQ" and e.is_undefined_length for e in ds.iterall())


def test_storescu_to_our_scp_events_and_byte_identical_datasets(scp, dicom_stack, ct_files):
    assert not any(undefined_length_sequences(f) for f in ct_files)
    compressed = {"-xw": "JPEG2000.dcm", "-xr": "SC_rgb_rle.dcm",
                  "-xv": "J2K_pixelrep_mismatch.dcm"}
    files = ct_files + [Path(get_testdata_file(n)) for n in compressed.values()]
    result = storescu(scp.port, ct_files, "AHSL_CT1")
    assert result.returncode == 0, result.stderr
    for option, name in compressed.items():
        result = storescu(scp.port, [Path(get_testdata_file(name))], "AHSL_CT1", propose=option)
        assert result.returncode == 0 and "Converting" not in result.stderr, result.stderr
    assert dicom_stack.ingest.counts["stored"] == len(files) and dicom_stack.ingest.counts["rejected"] == 0

    rows = []
    for f in files:
        source = f.read_bytes()
        sop_uid = str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID)
        [row] = dicom_stack.index.versions_of(sop_uid)
        rows.append(row)
        handed_back = dicom_stack.store.get(row.object_sha256)
        assert dataset_sha256(handed_back) == row.dataset_sha256  # what came off the wire, unchanged
        if undefined_length_sequences(f):
            # dcmtk always sends sequences with defined lengths, so for such a file the bytes on the wire (and
            # ours) differ from the file's in those length fields, while every element is equal
            assert dataset_sha256(handed_back) != dataset_sha256(source)
            assert pydicom.dcmread(io.BytesIO(handed_back)) == pydicom.dcmread(f)
        else:
            # the dataset the modality had on disk is exactly the dataset we hand back, whatever its syntax
            assert dataset_sha256(handed_back) == dataset_sha256(source), f.name
        assert row.transfer_syntax == str(pydicom.dcmread(f, stop_before_pixels=True).file_meta.TransferSyntaxUID)
        assert pydicom.dcmread(io.BytesIO(handed_back)).SOPInstanceUID == sop_uid

    dicom_stack.ingest.outbox.flush()  # the SCP appends events right after each status; don't race it
    stored = dicom_stack.events("InstanceStored")
    assert len(stored) == len(files)
    assert {e.payload["dataset_sha256"] for e in stored} == {r.dataset_sha256 for r in rows}
    studies = {str(pydicom.dcmread(f, stop_before_pixels=True).StudyInstanceUID) for f in files}
    assert {e.payload["study_uid"] for e in dicom_stack.events("StudyReceived")} == studies
    assert all(e.source == "AHSL" for e in stored)

    again = storescu(scp.port, ct_files[:3], "AHSL_CT1")  # re-sent: accepted, nothing new
    assert again.returncode == 0 and dicom_stack.ingest.counts["duplicate"] == 3
    dicom_stack.ingest.outbox.flush()
    assert len(dicom_stack.events("InstanceStored")) == len(files)


def test_unknown_calling_ae_is_refused_and_kept(scp, dicom_stack, ct_files):
    storescu(scp.port, ct_files[1:2], "STRANGER")
    status = _send_raw(scp.port, ct_files[0], calling_ae="STRANGER")
    assert status.Status == 0x0124 and "STRANGER" in status.ErrorComment
    letters = dicom_stack.dead_letters.list(channel="dicom")
    assert len(letters) == 2 and all("STRANGER" in dl.reason for dl in letters)
    originals = {f.read_bytes()[split_part10(f.read_bytes())[1]:] for f in ct_files[:2]}
    assert {dl.body[split_part10(dl.body)[1]:] for dl in letters} == originals  # received bytes, unchanged
    dicom_stack.ingest.outbox.flush()
    assert list(dicom_stack.store.iter_hashes()) == [] and dicom_stack.events() == []


def _send_raw(port: int, path: Path, calling_ae: str = "AYFY_PACS"):
    """Send a file's dataset bytes as they are (chunked send: no decoding, no re-encoding), so that broken
    datasets reach the SCP broken."""
    from pynetdicom import _config

    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    ae = AE(ae_title=calling_ae)
    ae.add_requested_context(ds.file_meta.MediaStorageSOPClassUID, ds.file_meta.TransferSyntaxUID)
    assoc = ae.associate("127.0.0.1", port, ae_title="WANYING")
    assert assoc.is_established
    _config.STORE_SEND_CHUNKED_DATASET = True
    try:
        return assoc.send_c_store(path)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = False
        assoc.release()


def test_malformed_instances_get_a_failure_status_and_the_scp_keeps_serving(scp, dicom_stack, ct_files, tmp_path):
    no_study = pydicom.dcmread(ct_files[0])
    del no_study.StudyInstanceUID
    missing = tmp_path / "missing-study-uid.dcm"
    no_study.save_as(missing, enforce_file_format=True)
    status = _send_raw(scp.port, missing)
    assert status.Status == 0xA900 and "StudyInstanceUID" in status.ErrorComment

    truncated = tmp_path / "truncated.dcm"
    truncated.write_bytes(ct_files[1].read_bytes()[:-5000])
    status = _send_raw(scp.port, truncated)
    assert status.Status == 0xC000 and "truncated" in status.ErrorComment

    assert len(dicom_stack.dead_letters.list(channel="dicom")) == 2
    ok = storescu(scp.port, ct_files[2:3], "AYFY_PACS")  # still serving
    assert ok.returncode == 0 and dicom_stack.ingest.counts["stored"] == 1


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=1))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "scp.crt", tmp_path / "scp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_tls_association(dicom_stack, ct_files, tmp_path):
    import ssl

    cert, key = _self_signed(tmp_path)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    scp = StoreScp(dicom_stack.ingest, ScpConfig(port=0, peers=PEERS, tls=server_ctx))
    scp.start()
    try:
        client_ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(cert))
        ds = pydicom.dcmread(ct_files[0])
        ae = AE(ae_title="AHSL_CT1")
        ae.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assoc = ae.associate("127.0.0.1", scp.port, ae_title="WANYING", tls_args=(client_ctx, "localhost"))
        assert assoc.is_established
        assert assoc.send_c_store(ds).Status == 0x0000
        assoc.release()
        plain = AE(ae_title="AHSL_CT1")  # without TLS the server does not talk DICOM at all
        plain.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
        assert not plain.associate("127.0.0.1", scp.port, ae_title="WANYING").is_established
    finally:
        scp.stop()
    assert dicom_stack.ingest.counts["stored"] == 1


def test_wrong_called_ae_is_refused_at_association(scp):
    ae = AE(ae_title="AHSL_CT1")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="NOT_US")
    assert assoc.is_rejected
    ok = AE(ae_title="AHSL_CT1")
    ok.add_requested_context("1.2.840.10008.1.1")
    assoc = ok.associate("127.0.0.1", scp.port, ae_title="WANYING")
    assert assoc.is_established and assoc.send_c_echo().Status == 0
    assoc.release()


def test_two_modalities_at_once_one_study_one_study_received(scp, dicom_stack, tmp_path):
    from pipelines.dicom.synthetic import ct_series

    study = "1.2.826.0.1.3680043.8.498.777"
    a = ct_series(tmp_path / "a", slices=8, size=64, study_uid=study, patient_id="MRN-PAR", seed=1)
    b = ct_series(tmp_path / "b", slices=8, size=64, study_uid=study, patient_id="MRN-PAR", seed=2)
    env = {**os.environ, "TCP_NODELAY": "1"}
    procs = [subprocess.Popen(["storescu", "-aet", ae, "-aec", "WANYING", "127.0.0.1", str(scp.port),
                               *map(str, files)], env=env, stderr=subprocess.PIPE)
             for ae, files in (("AHSL_CT1", a), ("AHSL_CT1", b))]
    assert [p.wait(60) for p in procs] == [0, 0]
    dicom_stack.ingest.outbox.flush()
    assert dicom_stack.ingest.counts["stored"] == 16
    assert [e.payload["study_uid"] for e in dicom_stack.events("StudyReceived")] == [study]
    assert len(dicom_stack.index.instances_of(study)) == 16


def test_outbox_republishing_after_a_crash_appends_nothing_twice(dicom_stack, ct_files):
    import sqlalchemy as sa

    from pipelines.storage.index import instances

    for f in ct_files[:3]:
        dicom_stack.ingest.receive_file(f.read_bytes(), hospital="AHSL", source_ae="AHSL_CT1")
    before = [e.event_id for e in dicom_stack.events()]
    assert len(before) == 4  # StudyReceived + 3 InstanceStored
    with dicom_stack.index.engine.begin() as conn:  # crash after the append, before the rows were marked
        conn.execute(sa.update(instances).values(published=False))
    assert dicom_stack.ingest.outbox.flush() == 4
    assert sorted(e.event_id for e in dicom_stack.events()) == sorted(before)
