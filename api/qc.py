"""The regulator's image-quality API under ``/api/v1/qc``: aggregates, series list, one series with its failed
checks, the image with the failed checks' locations drawn, and CSV/Excel export. Reads the QC views only;
regulators and operators. Opening an image is audited as ``StudyViewed``."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone

import numpy as np
import pydicom
import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Query, Request, Response

from api.auth import Principal, role
from pipelines.dicomweb.render import RenderOptions, render
from qc.protocol import DIMENSION_LABELS, load_all
from schemas.events import StudyViewed
from schemas.registry import REGISTRY
from schemas.types import DicomUID
from streams.processors.qc_views import qc_check_stats, qc_grade_stats, qc_latest, qc_scores, qc_studies
from streams.topics import publish

router = APIRouter(prefix="/api/v1/qc", tags=["qc"])
READ = ("regulator", "operator")
HOSPITAL = Query(None, pattern=r"^[A-Z0-9_-]{2,32}$")
BODY_PART = Query(None, pattern=r"^[a-z_]{2,32}$")
MONTH = Query(None, pattern=r"^\d{4}-\d{2}$")
EXPORT_COLUMNS = ("hospital", "month", "study_date", "modality", "protocol", "body_part_label", "protocol_version",
                  "coverage", "positioning", "artefact", "clarity", "total", "grade", "failed", "study_uid",
                  "series_uid", "scored_at")
EXPORT_HEADERS = ("医院", "月份", "检查日期", "设备类型", "质控方案", "部位", "方案版本", "检查范围", "摄片体位", "伪影",
                  "清晰度", "总分", "等级", "未通过项", "检查 UID", "序列 UID", "评分时间")


def _engine(request: Request):
    return request.app.state.platform.projector.engine


def _filters(table: sa.Table, hospital: str | None, body_part: str | None, month_from: str | None,
             month_to: str | None) -> list:
    part = table.c.protocol if "protocol" in table.c else table.c.body_part
    out = []
    if hospital:
        out.append(table.c.hospital == hospital)
    if body_part:
        out.append(part == body_part)
    if month_from:
        out.append(table.c.month >= month_from)
    if month_to:
        out.append(table.c.month <= month_to)
    return out


def body_part_labels() -> dict[str, str]:
    return {pid: p.title.split(" (")[0] for pid, p in load_all().items()}


@router.get("/summary", summary="Grade counts per hospital, body part and month, and failed-check counts")
def summary(request: Request, hospital: str | None = HOSPITAL, body_part: str | None = BODY_PART,
            month_from: str | None = MONTH, month_to: str | None = MONTH, _: Principal = role(*READ)) -> dict:
    with _engine(request).connect() as conn:
        grades = conn.execute(sa.select(qc_grade_stats).where(
            *_filters(qc_grade_stats, hospital, body_part, month_from, month_to))).mappings().all()
        checks = conn.execute(sa.select(qc_check_stats).where(
            *_filters(qc_check_stats, hospital, body_part, month_from, month_to))).mappings().all()
        hospitals = conn.execute(sa.select(qc_grade_stats.c.hospital).distinct()).scalars().all()
    return {"grades": [dict(r) for r in grades], "checks": [dict(r) for r in checks],
            "hospitals": sorted(hospitals), "body_parts": body_part_labels(), "dimensions": DIMENSION_LABELS,
            "grade_order": ["甲", "乙", "丙", "废片"]}


def _latest_rows(request: Request, hospital, body_part, month_from, month_to, grade, limit, offset):
    q = sa.select(qc_latest).where(*_filters(qc_latest, hospital, body_part, month_from, month_to))
    if grade:
        q = q.where(qc_latest.c.grade == grade)
    q = q.order_by(qc_latest.c.total, qc_latest.c.series_uid).offset(offset)
    if limit:
        q = q.limit(limit)
    with _engine(request).connect() as conn:
        return [dict(r) for r in conn.execute(q).mappings()]


def _public(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k not in ("failed_checks", "failed_data_checks")}
    out["failed_checks"] = json.loads(row["failed_checks"])
    out["failed_data_checks"] = json.loads(row["failed_data_checks"])
    return out


@router.get("/series", summary="Latest score of each series, worst first")
def series_list(request: Request, hospital: str | None = HOSPITAL, body_part: str | None = BODY_PART,
                month_from: str | None = MONTH, month_to: str | None = MONTH,
                grade: str | None = Query(None, max_length=8), limit: int = Query(50, ge=1, le=1000),
                offset: int = Query(0, ge=0), _: Principal = role(*READ)) -> dict:
    rows = _latest_rows(request, hospital, body_part, month_from, month_to, grade, limit, offset)
    return {"series": [_public(r) for r in rows]}


@router.get("/series/{series_uid}", summary="One series: latest score with failed checks, and every earlier score")
def series_detail(request: Request, series_uid: DicomUID, _: Principal = role(*READ)) -> dict:
    with _engine(request).connect() as conn:
        latest = conn.execute(sa.select(qc_latest).where(qc_latest.c.series_uid == series_uid)).mappings().first()
        history = conn.execute(sa.select(qc_scores).where(qc_scores.c.series_uid == series_uid)
                               .order_by(qc_scores.c.scored_at)).mappings().all()
    if latest is None:
        raise HTTPException(404, f"series {series_uid} has no QC score")
    return {"latest": _public(dict(latest)), "history": [_public(dict(r)) for r in history],
            "body_part_label": body_part_labels().get(latest["protocol"], latest["protocol"])}


def _draw(png: bytes, boxes: list[tuple[int, dict]], shape: tuple[int, int]) -> bytes:
    """Mark each failed check's location: a numbered box for a bbox, a bar along an edge."""
    from PIL import Image, ImageDraw

    img = Image.open(io.BytesIO(png)).convert("RGB")
    sy, sx = img.height / shape[0], img.width / shape[1]
    pen = ImageDraw.Draw(img)
    width = max(2, img.width // 200)
    for number, where in boxes:
        if isinstance(where.get("bbox"), list) and len(where["bbox"]) == 4:
            r0, c0, r1, c1 = where["bbox"]
            rect = [c0 * sx, r0 * sy, max(c1 * sx, c0 * sx + 4), max(r1 * sy, r0 * sy + 4)]
        elif where.get("edge") in ("top", "bottom", "left", "right"):
            t = max(6, img.width // 40)
            rect = {"top": [0, 0, img.width - 1, t], "bottom": [0, img.height - 1 - t, img.width - 1, img.height - 1],
                    "left": [0, 0, t, img.height - 1], "right": [img.width - 1 - t, 0, img.width - 1,
                                                                  img.height - 1]}[where["edge"]]
        else:
            continue
        pen.rectangle(rect, outline=(255, 40, 40), width=width)
        pen.text((rect[0] + width + 2, rect[1] + width + 1), str(number), fill=(255, 230, 0))
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


@router.get("/series/{series_uid}/image", summary="The scored image with failed checks' locations marked (PNG)",
            response_class=Response, responses={200: {"content": {"image/png": {}}}})
def series_image(request: Request, series_uid: DicomUID, sop: DicomUID | None = None,
                 who: Principal = role(*READ)) -> Response:
    from qc.worker import platform_source

    with _engine(request).connect() as conn:
        row = conn.execute(sa.select(qc_latest).where(qc_latest.c.series_uid == series_uid)).mappings().first()
        person = conn.execute(sa.select(qc_studies.c.person_key).where(qc_studies.c.series_uid == series_uid)
                              .limit(1)).scalar()
    if row is None:
        raise HTTPException(404, f"series {series_uid} has no QC score")
    sop = sop or row["sop_uid"]
    if not sop:
        raise HTTPException(404, "the score names no image")
    platform = request.app.state.platform
    found = platform_source(platform).instance(row["study_uid"], row["hospital"], sop)
    if found is None:
        raise HTTPException(404, f"image {sop} is not stored")
    ds = pydicom.dcmread(found)
    frame = ds.pixel_array
    if frame.ndim == 3 and str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME"):
        frame = frame[0]
    png = render(ds, np.asarray(frame), RenderOptions("image/png", viewport=(768, 768)))
    failed = json.loads(row["failed_checks"])
    boxes = [(i + 1, c["where"]) for i, c in enumerate(failed) if c.get("where") and c.get("sop_uid") == sop]
    if person:
        publish(platform.log, [REGISTRY.new(
            StudyViewed(person_key=person, study_uid=row["study_uid"], actor=who.name, role=who.role),
            key=person, source=who.hospital or "wanying-api", occurred_at=datetime.now(timezone.utc))])
    return Response(_draw(png, boxes, frame.shape[:2]), media_type="image/png", headers={"Cache-Control": "no-store"})


def _export_rows(request: Request, hospital, body_part, month_from, month_to, grade) -> list[list]:
    labels = body_part_labels()
    rows = _latest_rows(request, hospital, body_part, month_from, month_to, grade, None, 0)
    return [[labels.get(r["protocol"], r["protocol"]) if c == "body_part_label" else r[c] for c in EXPORT_COLUMNS]
            for r in rows]


@router.get("/export.csv", summary="Latest scores as CSV (UTF-8 with BOM, opens in Excel)")
def export_csv(request: Request, hospital: str | None = HOSPITAL, body_part: str | None = BODY_PART,
               month_from: str | None = MONTH, month_to: str | None = MONTH,
               grade: str | None = Query(None, max_length=8), _: Principal = role(*READ)) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(EXPORT_HEADERS)
    writer.writerows(_export_rows(request, hospital, body_part, month_from, month_to, grade))
    return Response(("\ufeff" + buf.getvalue()).encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="qc-scores.csv"'})


@router.get("/export.xlsx", summary="Latest scores as an Excel workbook")
def export_xlsx(request: Request, hospital: str | None = HOSPITAL, body_part: str | None = BODY_PART,
                month_from: str | None = MONTH, month_to: str | None = MONTH,
                grade: str | None = Query(None, max_length=8), _: Principal = role(*READ)) -> Response:
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.title = "影像质控评分"
    sheet.append(list(EXPORT_HEADERS))
    for row in _export_rows(request, hospital, body_part, month_from, month_to, grade):
        sheet.append(row)
    sheet.freeze_panes = "A2"
    buf = io.BytesIO()
    book.save(buf)
    return Response(buf.getvalue(),
                    media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": 'attachment; filename="qc-scores.xlsx"'})
