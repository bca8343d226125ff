"""Instance index: same bytes no-op, changed bytes a new version, manifests canonical and rebuilt on demand."""
from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from pipelines.storage.index import InstanceIndex, InstanceRow, StudyFacts
from pipelines.storage.manifest import build_manifest


def _row(sop: str, content: bytes, series: str = "1.2.3.1", study: str = "1.2.3") -> InstanceRow:
    digest = hashlib.sha256(content).hexdigest()
    return InstanceRow(study_uid=study, series_uid=series, sop_uid=sop, version=0,
                       sop_class_uid="1.2.840.10008.5.1.4.1.1.2",
                       transfer_syntax="1.2.840.10008.1.2.1", object_sha256=digest, dataset_sha256=digest,
                       size=len(content), received_at="2026-11-28T10:00:00+00:00", hospital="AHSL", source_ae="CT1",
                       modality="CT")


FACTS = StudyFacts("1.2.3", "AHSL", "h.AHSL." + "0" * 32)


def _exercise(index: InstanceIndex) -> None:
    first = index.record(_row("1.2.3.1.1", b"a"), FACTS)
    assert (first.outcome, first.version, first.first_in_study) == ("stored", 1, True)
    again = index.record(_row("1.2.3.1.1", b"a"), FACTS)
    assert (again.outcome, again.version, again.first_in_study) == ("duplicate", 1, False)
    changed = index.record(_row("1.2.3.1.1", b"a-corrected"), FACTS)
    assert (changed.outcome, changed.version) == ("new_version", 2)
    assert changed.previous_sha256 == hashlib.sha256(b"a").hexdigest()
    index.record(_row("1.2.3.1.2", b"b"), FACTS)
    assert [v.version for v in index.versions_of("1.2.3.1.1")] == [1, 2]
    current = index.instances_of("1.2.3")
    assert [(r.sop_uid, r.version) for r in current] == [("1.2.3.1.1", 2), ("1.2.3.1.2", 1)]
    assert len(index.instances_of("1.2.3", all_versions=True)) == 3
    assert index.count_instances("1.2.3") == 2
    index.mark_completed("1.2.3", "f" * 64)
    late = index.record(_row("1.2.3.1.3", b"c"), FACTS)
    assert late.study_status == "completed" and index.study("1.2.3").status == "reopened"


def test_index_on_sqlite(tmp_path):
    _exercise(InstanceIndex(sa.create_engine(f"sqlite:///{tmp_path}/i.sqlite")))


@pytest.mark.postgres
def test_index_on_postgresql(postgres_url):
    _exercise(InstanceIndex(sa.create_engine(postgres_url)))


def test_manifest_is_canonical_and_order_independent():
    rows = [_row("1.2.3.1.2", b"b"), _row("1.2.3.1.1", b"a"), _row("1.2.3.2.1", b"c", series="1.2.3.2")]
    one, two = build_manifest("1.2.3", rows), build_manifest("1.2.3", list(reversed(rows)))
    assert one.canonical == two.canonical and one.sha256 == hashlib.sha256(one.canonical).hexdigest()
    assert one.instance_count == 3 and one.total_bytes == 3
    assert [s["series_uid"] for s in one.document["series"]] == ["1.2.3.1", "1.2.3.2"]
    assert build_manifest("1.2.3", rows[:2]).sha256 != one.sha256
    with pytest.raises(ValueError):
        build_manifest("9.9", rows)
