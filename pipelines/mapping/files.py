"""Mapping tables to and from CSV and Excel (.xlsx). Columns: hospital, local_code, local_name, standard_items."""
from __future__ import annotations

import csv
from pathlib import Path

from openpyxl import Workbook, load_workbook

from pipelines.mapping.store import Mapping

COLUMNS = ("hospital", "local_code", "local_name", "standard_items", "status", "reason")


def read_rows(path: Path) -> list[dict]:
    """Rows as dicts; ``standard_items`` is ';'-separated. UTF-8 (with or without BOM) or GB18030 CSV."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        sheet = load_workbook(path, read_only=True, data_only=True).active
        rows = list(sheet.iter_rows(values_only=True))
        if not rows:
            return []
        header = [str(h or "").strip() for h in rows[0]]
        return [{h: ("" if v is None else str(v)) for h, v in zip(header, r)} for r in rows[1:]
                if any(v not in (None, "") for v in r)]
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("gb18030")  # Excel on Chinese Windows saves CSV in GBK
    return [dict(r) for r in csv.DictReader(text.splitlines())]


def _cells(m: Mapping) -> list[str]:
    return [m.hospital, m.local_code, m.local_name, ";".join(m.items), m.status, m.reason or ""]


def write_rows(path: Path, mappings: list[Mapping]) -> None:
    if path.suffix.lower() == ".xlsx":
        book = Workbook()
        sheet = book.active
        sheet.title = "exam_code_mappings"
        sheet.append(list(COLUMNS))
        for m in mappings:
            sheet.append(_cells(m))
        book.save(path)
        return
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(_cells(m) for m in mappings)
