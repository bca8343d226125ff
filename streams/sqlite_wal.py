"""WAL checkpoints off the commit path, for the SQLite log and views.

By default SQLite checkpoints inside the commit that takes the write-ahead log past 1,000 pages: that commit then
also copies those pages into the database file and fsyncs it. On a views database of several GB the pages are
scattered, and at a doctor's order rate this happens several times a second, each time adding tens of
milliseconds to one unlucky batch: it was the p99 of the reminder latency. Here a background thread checkpoints
every second in PASSIVE mode, which never waits for (or blocks) the writer or the readers; a committing connection
only checkpoints itself when the WAL passes :data:`WRITER_AUTOCHECKPOINT` pages (no checkpointer running, or it
falls behind), so the WAL stays bounded either way.
"""
from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)

#: Pages (4 KiB) a writer's WAL may hold before the committing connection checkpoints itself.
WRITER_AUTOCHECKPOINT = 25_000


def writer_pragmas(conn) -> None:
    """For every connection that writes: leave checkpoints to the :class:`WalCheckpointer`, up to a bound."""
    conn.execute(f"PRAGMA wal_autocheckpoint={WRITER_AUTOCHECKPOINT}")


class WalCheckpointer:
    """A daemon thread that runs ``PRAGMA wal_checkpoint(PASSIVE)`` on its own connection every ``every`` seconds."""

    def __init__(self, path: str | Path, every: float = 1.0) -> None:
        self.path, self.every = Path(path), every
        self._stop = threading.Event()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None, timeout=30)
        self._thread = threading.Thread(target=self._run, name=f"wal-checkpoint-{self.path.name}", daemon=True)
        self._thread.start()

    def checkpoint(self) -> tuple[int, int, int]:
        """(busy, WAL pages, pages checkpointed), as SQLite reports them."""
        return tuple(self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.checkpoint()
            except sqlite3.Error as exc:  # e.g. the file went away in a test's teardown; try again next time
                log.warning("WAL checkpoint of %s failed: %s", self.path, exc)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self._db.close()
