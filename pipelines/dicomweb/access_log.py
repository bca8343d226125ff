"""Keep query strings out of the HTTP access log: QIDO-RS puts names and patient IDs in the URL
(``?PatientName=WANG*``), and uvicorn would log them in clear."""
from __future__ import annotations

import logging


class RedactQuery(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0] + "?[query redacted]", args[3], args[4])
        return True


def install() -> None:
    """Idempotent: add the filter to uvicorn's access logger (it survives uvicorn's logging setup)."""
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQuery) for f in logger.filters):
        logger.addFilter(RedactQuery())
