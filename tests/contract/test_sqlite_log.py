"""What the SQLite log must get right beyond the contract: several handles (processes) on one file, failed appends."""
from __future__ import annotations

import threading

import pytest

from streams.log.sqlite import SqliteLog


def test_a_topic_created_elsewhere_keeps_its_partition_count(tmp_path):
    with SqliteLog(tmp_path / "log.sqlite") as first, SqliteLog(tmp_path / "log.sqlite") as second:
        first.create_topic("person", 4)  # `second` opened before: its cache does not know the topic
        with pytest.raises(ValueError):
            second.create_topic("person", 8)
        assert second.partitions("person") == 4
        assert second.end_offsets("person") == {p: 0 for p in range(4)}


def test_readers_never_see_an_append_that_rolls_back(tmp_path, envelopes):
    log = SqliteLog(tmp_path / "log.sqlite")
    log.create_topic("person", 1)
    log.append("person", envelopes(3))
    seen: dict = {}
    insert = log._append_locked

    def insert_then_fail(*args):
        insert(*args)  # rows written, transaction still open: another thread reads now

        def look() -> None:
            seen["end"] = log.end_offsets("person")
            seen["records"] = len(log.read("person", 0, 0))
            seen["total"] = log.count("person")

        reader = threading.Thread(target=look)
        reader.start()
        reader.join(10)
        raise OSError("disk full")

    log._append_locked = insert_then_fail
    with pytest.raises(OSError):
        log.append("person", envelopes(5))
    assert seen == {"end": {0: 3}, "records": 3, "total": 3}
    del log._append_locked
    assert [p.offset for p in log.append("person", envelopes(2))] == [3, 4]
    log.close()
