"""WAL checkpoints run in the background for the views and the embedded log, not inside a committing batch."""
from __future__ import annotations

import time

from streams.log.sqlite import SqliteLog
from streams.sqlite_wal import WRITER_AUTOCHECKPOINT
from wanying.settings import Settings
from wanying.wiring import Platform

MB = 1 << 20


def _eventually(check, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_the_views_database_is_checkpointed_in_the_background(tmp_path):
    platform = Platform(Settings(data_dir=tmp_path, log_fsync="off"))
    engine = platform.views_engine
    path = tmp_path / "views.sqlite"
    with engine.connect() as conn:  # a committing connection would only checkpoint past this many pages
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == WRITER_AUTOCHECKPOINT
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE filler (b BLOB)")
    for _ in range(20):  # 8 MB in the WAL: far below the writers' own bound
        with engine.begin() as conn:
            conn.exec_driver_sql("INSERT INTO filler VALUES (randomblob(400000))")
    # Only a checkpoint moves pages into the database file: the background one did.
    assert _eventually(lambda: path.stat().st_size > 7 * MB), path.stat().st_size
    platform.close()


def test_the_embedded_log_is_checkpointed_in_the_background(tmp_path):
    log = SqliteLog(tmp_path / "log.sqlite", fsync="off")
    try:
        assert log._db.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == WRITER_AUTOCHECKPOINT
        log._db.execute("CREATE TABLE filler (b BLOB)")
        for _ in range(20):
            log._db.execute("INSERT INTO filler VALUES (randomblob(400000))")
        assert _eventually(lambda: (tmp_path / "log.sqlite").stat().st_size > 7 * MB)
    finally:
        log.close()
