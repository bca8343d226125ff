"""A signed report, as a doctor opens it from a reminder or a duplicate popup: the current text (decrypted for the
reader only), its status and amendments, and the exam it belongs to with a link to its images. Audited."""
from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Request

from api.auth import Principal, role
from api.doctor import audit_access
from pipelines.crypto import CryptoError
from schemas.hospitals import default_hospitals
from schemas.types import HOSPITAL_CODE_PATTERN
from streams.processors.history import exam_history
from streams.processors.reports import report_texts

router = APIRouter(prefix="/api/v1/reports", tags=["doctor"])


@router.get("/{hospital}/{report_id}")
def report(request: Request, hospital: str = Path(pattern=HOSPITAL_CODE_PATTERN),
           report_id: str = Path(min_length=1, max_length=64), who: Principal = role("doctor")) -> dict:
    """One report of any hospital in the province, with the exam's item, modality, date and study UID."""
    engine = request.app.state.platform.projector.engine
    with engine.connect() as conn:
        row = conn.execute(sa.select(report_texts).where(report_texts.c.hospital == hospital,
                                                         report_texts.c.report_id == report_id)).mappings().first()
        if row is None:
            raise HTTPException(404, f"no signed report {report_id!r} from {hospital} (it may not be signed yet, "
                                     "or the views are still catching up)")
        exam = conn.execute(
            sa.select(exam_history.c.local_item_name, exam_history.c.modality, exam_history.c.study_date,
                      exam_history.c.study_uid, exam_history.c.description)
            .where(exam_history.c.hospital == hospital, exam_history.c.report_id == report_id)
        ).mappings().first() or {}
    audit_access(request, who, {row["person_key"]}, "report")
    keys = request.app.state.platform.keys
    try:
        text = {field: keys.decrypt(row[field], context=field) for field in ("findings", "impression")}
    except CryptoError as err:
        # A shredded key (the patient's data was erased) or a key ring that did not make this value.
        raise HTTPException(410, f"the text of report {report_id!r} cannot be read: {err}") from None
    hospitals = default_hospitals()
    return {
        "hospital": hospital, "hospital_name": hospitals.name(hospital), "report_id": report_id,
        "person_key": row["person_key"], "study_uid": row["study_uid"] or exam.get("study_uid"),
        "accession_number": row["accession_number"], "status": row["status"], "critical": row["critical"],
        "author_id": row["author_id"], "signed_at": row["signed_at"], "first_signed_at": row["first_signed_at"],
        "amendments": row["amendments"], "amended_reason": row["amended_reason"],
        "item_name": exam.get("local_item_name") or exam.get("description"),
        "modality": exam.get("modality"), "study_date": exam.get("study_date"), **text,
    }
