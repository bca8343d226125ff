"""Thousands of mutated real instances through the accept path: no crash, every refusal kept with its bytes."""
from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file

from pipelines.dicom.parse import DicomRejected, split_part10
from pipelines.dicom.walk import Malformed, check_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")  # pydicom warns about every odd value it meets
NO_FSYNC = pytest.mark.parametrize("dicom_stack", ["off"], indirect=True)  # durability is not under test here

SEEDS = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
         "rtplan.dcm", "SC_rgb_rle.dcm", "image_dfl.dcm"]


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    op = rng.randrange(7)
    pos = rng.randrange(len(buf))
    if op == 0:  # truncate
        del buf[pos:]
    elif op == 1:  # flip bytes
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
    elif op == 2:  # insert junk
        buf[pos:pos] = rng.randbytes(rng.randint(1, 64))
    elif op == 3:  # delete a range
        del buf[pos:pos + rng.randint(1, 256)]
    elif op == 4:  # corrupt a VR
        at = buf.find(rng.choice([b"UI", b"SQ", b"OB", b"OW", b"DA", b"CS", b"US"]), pos)
        if at >= 0:
            buf[at:at + 2] = rng.randbytes(2)
    elif op == 5:  # huge or undefined length
        at = rng.randrange(max(1, len(buf) - 4))
        buf[at:at + 4] = rng.choice([b"\xff\xff\xff\xff", b"\xfe\xff\xff\x7f", rng.randbytes(4)])
    else:  # duplicate a chunk (repeated elements)
        chunk = buf[pos:pos + rng.randint(8, 512)]
        buf[pos:pos] = chunk
    return bytes(buf)


@pytest.mark.slow
@NO_FSYNC
def test_mutated_files_never_crash_and_every_reject_is_kept(dicom_stack):
    rng = random.Random(20261128)
    seeds = [open(get_testdata_file(n), "rb").read() for n in SEEDS]
    accepted = rejected = 0
    for i in range(3000):
        data = mutate(rng.choice(seeds), rng)
        try:
            dicom_stack.ingest.receive_file(data, hospital="AHSL", source_ae="FUZZ")
            accepted += 1
        except DicomRejected as exc:
            assert exc.reason and exc.status in (0xC000, 0xA900), exc
            rejected += 1
    letters = dicom_stack.dead_letters.counts()["dicom"]["open"]
    assert letters == rejected == dicom_stack.ingest.counts["rejected"]
    assert rejected > 1000 and accepted > 100  # both paths really exercised
    for letter in dicom_stack.dead_letters.list(channel="dicom", limit=50):
        assert letter.reason.startswith("[0x")


@pytest.mark.slow
@NO_FSYNC
def test_mutated_datasets_over_the_network_path(dicom_stack):
    rng = random.Random(7)
    data = open(get_testdata_file("CT_small.dcm"), "rb").read()
    ts, offset = split_part10(data)
    dataset = data[offset:]
    rejected = 0
    for _ in range(1000):
        try:
            dicom_stack.ingest.receive_dataset(mutate(dataset, rng), ts, hospital="AHSL", source_ae="FUZZ",
                                               sop_class_uid="1.2.840.10008.5.1.4.1.1.2", sop_uid="")
        except DicomRejected:
            rejected += 1
    assert rejected == dicom_stack.dead_letters.counts()["dicom"]["open"] > 500


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2048), st.sampled_from(["1.2.840.10008.1.2", "1.2.840.10008.1.2.1",
                                                  "1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99"]))
def test_walker_only_ever_raises_malformed(data, ts):
    try:
        check_dataset(data, ts)
    except Malformed:
        pass
