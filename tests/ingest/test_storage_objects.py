"""Content-addressed object store on file:// and on s3:// (a real moto server)."""
from __future__ import annotations

import hashlib
import os
import uuid

import pytest

from pipelines.storage.objects import FileObjectStore, ObjectCorrupt, object_key, open_store


@pytest.fixture(params=["file", "s3"])
def store(request, tmp_path):
    if request.param == "file":
        return open_store(tmp_path.as_uri() + "/objects")
    moto = request.getfixturevalue("moto_s3")
    bucket = f"wanying-{uuid.uuid4().hex[:12]}"
    moto.create_bucket(bucket)
    return open_store(f"s3://{bucket}/originals", **moto.storage_options)


def test_put_get_roundtrip_is_byte_identical(store):
    data = os.urandom(300_000)
    result = store.put(data)
    assert result.sha256 == hashlib.sha256(data).hexdigest() and result.created and result.size == len(data)
    assert store.get(result.sha256) == data
    assert store.exists(result.sha256) and store.verify(result.sha256)
    assert list(store.iter_hashes()) == [result.sha256]


def test_put_existing_is_a_noop(store):
    data = b"DICM" * 1000
    first = store.put(data)
    second = store.put(data)
    assert first.created and not second.created and first.sha256 == second.sha256
    assert list(store.iter_hashes()) == [first.sha256]


def test_put_refuses_bytes_that_do_not_match_the_expected_hash(store):
    with pytest.raises(ObjectCorrupt):
        store.put(b"abc", sha256=hashlib.sha256(b"abd").hexdigest())
    assert list(store.iter_hashes()) == []


def test_missing_object(store):
    missing = hashlib.sha256(b"never stored").hexdigest()
    assert not store.exists(missing) and not store.verify(missing)
    with pytest.raises(FileNotFoundError):
        store.get(missing)


def test_file_store_detects_corruption_and_leaves_no_temp_files(tmp_path):
    store = FileObjectStore(tmp_path, fsync="batch")
    digests = [store.put(os.urandom(1000)).sha256 for _ in range(20)]
    store.sync()
    assert sorted(store.iter_hashes()) == sorted(digests)
    assert not [p for p in tmp_path.rglob(".tmp-*")]
    victim = store.path_of(digests[0])
    victim.chmod(0o644)
    victim.write_bytes(b"flipped")
    assert not store.verify(digests[0])
    with pytest.raises(ObjectCorrupt):
        store.get(digests[0])


def test_object_key_rejects_non_hashes():
    with pytest.raises(ValueError):
        object_key("../../etc/passwd")


def test_ingest_on_s3_keeps_the_file_byte_for_byte_and_dedupes(moto_s3, tmp_path, ct_files):
    from tests.ingest.dicom_fixtures import DicomStack

    bucket = f"wanying-{uuid.uuid4().hex[:12]}"
    moto_s3.create_bucket(bucket)
    stack = DicomStack(tmp_path / "s3stack", store_url=f"s3://{bucket}/originals", **moto_s3.storage_options)
    try:
        data = ct_files[0].read_bytes()
        first = stack.ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
        again = stack.ingest.receive_file(data, hospital="AHSL", source_ae="AHSL_PACS")
        assert first.object_sha256 == hashlib.sha256(data).hexdigest() and again.outcome.outcome == "duplicate"
        assert stack.store.get(first.object_sha256) == data
        assert list(stack.store.iter_hashes()) == [first.object_sha256]
    finally:
        stack.close()
