"""QIDO-RS: run a parsed query against the catalog and answer in DICOM JSON (PS3.18 10.6.3)."""
from __future__ import annotations

from collections import defaultdict

import sqlalchemy as sa

from pipelines.dicomweb.catalog import (COLUMNS, MODALITIES_IN_STUDY, PATIENT_ID, PATIENT_NAME, Catalog, catalog,
                                        name_token, name_tokens, patient_id_token)
from pipelines.dicomweb.metadata import all_attributes, instance_path, pick
from pipelines.dicomweb.query import (PN_KEYS, RANGE_KEYS, UID_KEYS, Query, QueryError, date_range, has_wildcard,
                                      in_range, like_pattern, matches, pn_matches, query_terms)

MAX_SCAN = 2000  # candidates whose originals may be read to check a key the catalog cannot match
INT_COLUMNS = {"series_number", "instance_number"}

DEFAULTS = {
    "study": ["00080005", "00080020", "00080030", "00080050", "00080090", "00100010", "00100020", "00100030",
              "00100040", "0020000D", "00200010", "00081030"],
    "series": ["00080005", "00080060", "0008103E", "0020000D", "0020000E", "00200011", "00400244", "00400245"],
    "instance": ["00080005", "00080016", "00080018", "0020000D", "0020000E", "00200013", "00280010", "00280011",
                 "00280100", "00280008"],
}


def _conditions(cat: Catalog, q: Query) -> tuple[list, dict[str, list[str]]]:
    c, conds, post = catalog.c, [], {}
    for key, values in q.filters.items():
        column = COLUMNS.get(key)
        if key == MODALITIES_IN_STUDY:
            wanted = [m.strip() for v in values for m in v.replace(",", "\\").split("\\") if m.strip()]
            conds.append(c.study_uid.in_(sa.select(c.study_uid).where(c.modality.in_(wanted))))
        elif key == PATIENT_ID and not any(has_wildcard(v) for v in values):
            conds.append(c.patient_id_token.in_([patient_id_token(cat.keys, v) for v in values]))
        elif key == PATIENT_NAME:
            for value in values:
                terms = query_terms(value, q.fuzzy)
                if terms:
                    tokens = sorted({name_token(cat.keys, t) for t in terms})
                    conds.append(c.study_uid.in_(
                        sa.select(name_tokens.c.study_uid).where(name_tokens.c.token.in_(tokens))
                        .group_by(name_tokens.c.study_uid)
                        .having(sa.func.count(sa.distinct(name_tokens.c.token)) == len(tokens))))
            post[key] = values  # always confirmed on the original
        elif column is not None:
            col = c[column]
            if key in UID_KEYS:
                conds.append(col.in_(values))
            elif key in RANGE_KEYS:
                for value in values:
                    lo, hi = date_range(value)
                    if lo is not None:
                        conds.append(col >= lo)
                    if hi is not None:
                        conds.append(sa.func.substr(col, 1, len(hi)) <= hi)
            elif column in INT_COLUMNS:
                try:
                    conds.append(col.in_([int(v) for v in values]))
                except ValueError:
                    raise QueryError(f"{column} must be an integer") from None
            else:
                alts = [col.like(like_pattern(v), escape="\\") if has_wildcard(v) else col == v for v in values]
                conds.append(sa.or_(*alts))
        else:
            post[key] = values
    return conds, post


def _confirm(ds, post: dict[str, list[str]], fuzzy: bool) -> bool:
    for key, values in post.items():
        elem = ds.get(int(key, 16))
        value = None if elem is None or elem.value is None else str(elem.value)
        for pattern in values:
            if key in PN_KEYS:
                ok = pn_matches(pattern, value, fuzzy)
            elif key in RANGE_KEYS:
                ok = in_range(value, *date_range(pattern))
            else:
                ok = matches(pattern, value)
            if not ok:
                return False
    return True


def search(cat: Catalog, q: Query, root: str, *, study_uid: str | None = None,
           series_uid: str | None = None) -> list[dict]:
    """The matching studies, series or instances as DICOM JSON, in a stable order, paged by limit/offset."""
    c = catalog.c
    conds, post = _conditions(cat, q)
    if study_uid:
        conds.append(c.study_uid == study_uid)
    if series_uid:
        conds.append(c.series_uid == series_uid)
    key = {"study": c.study_uid, "series": c.series_uid, "instance": c.sop_uid}[q.level]
    order = {
        "study": [sa.func.max(c.study_date).desc(), sa.func.max(c.study_time).desc(), c.study_uid],
        "series": [sa.func.min(c.study_uid), sa.func.min(c.series_number), c.series_uid],
        "instance": [sa.func.min(c.series_uid), sa.func.min(c.instance_number), c.sop_uid],
    }[q.level]
    stmt = sa.select(key, sa.func.min(c.object_sha256)).where(*conds).group_by(key).order_by(*order)
    with cat.engine.connect() as conn:
        if post:
            found = conn.execute(stmt.limit(MAX_SCAN + 1)).all()
            if len(found) > MAX_SCAN:
                raise QueryError(f"{', '.join(post)} can only be checked on at most {MAX_SCAN} candidates; add "
                                 f"another key (PatientID, StudyDate range, AccessionNumber, a name prefix)")
            found = [r for r in found if _confirm(cat.reader.header(r[1]), post, q.fuzzy)]
            found = found[q.offset:q.offset + q.limit]
        else:
            found = conn.execute(stmt.limit(q.limit).offset(q.offset)).all()
        keys = [r[0] for r in found]
        if not keys:
            return []
        rows = conn.execute(sa.select(c.study_uid, c.series_uid, c.sop_uid, c.modality).where(key.in_(keys))).all()
    counts = _aggregate(rows, q.level)
    return [_result(cat, q, root, k, sha, counts[k]) for k, sha in found]


def _aggregate(rows, level: str) -> dict[str, dict]:
    out: dict[str, dict] = defaultdict(lambda: {"series": set(), "instances": 0, "modalities": set()})
    for study, series, sop, modality in rows:
        k = {"study": study, "series": series, "instance": sop}[level]
        agg = out[k]
        agg["series"].add(series)
        agg["instances"] += 1
        if modality:
            agg["modalities"].add(modality)
        agg.update(study=study, series_uid=series)
    return out


def _result(cat: Catalog, q: Query, root: str, key: str, sha: str, agg: dict) -> dict:
    ds = cat.reader.header(sha)
    wanted = list(DEFAULTS[q.level]) + list(q.filters)
    if q.includefield and "all" in q.includefield:
        wanted += all_attributes(ds)
    elif q.includefield:
        wanted += list(q.includefield)
    doc = pick(ds, dict.fromkeys(wanted))
    study = agg["study"]
    if q.level == "study":
        doc["00080061"] = {"vr": "CS", "Value": sorted(agg["modalities"])}
        doc["00201206"] = {"vr": "IS", "Value": [len(agg["series"])]}
        doc["00201208"] = {"vr": "IS", "Value": [agg["instances"]]}
        url = f"{root}/studies/{study}"
    elif q.level == "series":
        doc["00201209"] = {"vr": "IS", "Value": [agg["instances"]]}
        url = f"{root}/studies/{study}/series/{key}"
    else:
        url = f"{root}/{instance_path(study, agg['series_uid'], key)}"
    doc["00080056"] = {"vr": "CS", "Value": ["ONLINE"]}
    doc["00081190"] = {"vr": "UR", "Value": [url]}
    return dict(sorted(doc.items()))
