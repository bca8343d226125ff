"""Data checks of the digital-imaging service standard: complete series, no duplicate or missing instances,
lossless original transfer syntax, required tags present and consistent (patient, study, geometry)."""
from __future__ import annotations

from collections import Counter

import numpy as np
import pydicom

from qc.exam import slice_position

LOSSY_TRANSFER_SYNTAXES = {
    "1.2.840.10008.1.2.4.50": "JPEG baseline", "1.2.840.10008.1.2.4.51": "JPEG extended",
    "1.2.840.10008.1.2.4.81": "JPEG-LS near-lossless", "1.2.840.10008.1.2.4.91": "JPEG 2000 (lossy)",
    "1.2.840.10008.1.2.4.93": "JPEG 2000 Part 2 (lossy)", "1.2.840.10008.1.2.4.203": "HTJ2K (lossy)",
    "1.2.840.10008.1.2.4.100": "MPEG2", "1.2.840.10008.1.2.4.102": "MPEG-4",
    "1.2.840.10008.1.2.4.110": "JPEG XL (lossy)",
}
REQUIRED = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "Modality", "StudyDate")
REQUIRED_VOLUME_GEOMETRY = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness")
CONSISTENT = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "Rows", "Columns",
              "PixelSpacing", "ImageOrientationPatient")


def _result(cid: str, label: str, problems: list[str]) -> dict:
    return {"id": cid, "label": label, "passed": not problems, "detail": "; ".join(problems[:10])}


def check(headers: list[pydicom.Dataset], volume: bool) -> list[dict]:
    out = []
    # transfer syntax: the original must be stored losslessly
    lossy = []
    for ds in headers:
        ts = str(getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", "") or "")
        if ts in LOSSY_TRANSFER_SYNTAXES:
            lossy.append(f"{ds.get('SOPInstanceUID', '?')}: {LOSSY_TRANSFER_SYNTAXES[ts]} ({ts})")
        elif str(ds.get("LossyImageCompression", "")) == "01":
            lossy.append(f"{ds.get('SOPInstanceUID', '?')}: LossyImageCompression=01")
    out.append(_result("lossless_original", "原始图像无损传输/存储", lossy))
    # required tags
    missing = []
    need = REQUIRED + (REQUIRED_VOLUME_GEOMETRY if volume else ())
    for ds in headers:
        absent = [k for k in need if not ds.get(k)]
        if not volume and not (ds.get("PixelSpacing") or ds.get("ImagerPixelSpacing")):
            absent.append("PixelSpacing/ImagerPixelSpacing")
        if absent:
            missing.append(f"instance {ds.get('InstanceNumber', '?')}: {', '.join(absent)}")
    out.append(_result("required_tags", "必备标签齐全（患者、检查、几何）", missing))
    # consistency across the series
    inconsistent = []
    for key in CONSISTENT:
        values = {str(ds.get(key)) for ds in headers if ds.get(key) is not None}
        if len(values) > 1:
            inconsistent.append(f"{key} differs: {sorted(values)[:3]}")
    out.append(_result("consistent_tags", "同一序列内患者/检查/几何标签一致", inconsistent))
    # duplicates
    dups = []
    for key, counter in (("SOPInstanceUID", Counter(str(ds.get("SOPInstanceUID")) for ds in headers)),
                         ("InstanceNumber", Counter(int(ds.get("InstanceNumber", 0) or 0) for ds in headers))):
        dups += [f"{key} {v} ×{n}" for v, n in counter.items() if n > 1 and v not in ("None", 0)]
    if volume:
        pos = Counter(round(p, 3) for p in (slice_position(ds) for ds in headers) if p is not None)
        dups += [f"slice position {p} mm ×{n}" for p, n in pos.items() if n > 1]
    out.append(_result("no_duplicates", "无重复实例", dups))
    # completeness: instance numbers and positions without gaps
    gaps = []
    if volume and len(headers) > 1:
        numbers = sorted({int(ds.get("InstanceNumber", 0) or 0) for ds in headers})
        absent = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        if absent:
            gaps.append(f"instance numbers missing: {absent[:10]}")
        pos = np.array(sorted({round(p, 3) for p in (slice_position(ds) for ds in headers) if p is not None}))
        if len(pos) > 2:
            step = np.median(np.diff(pos))
            holes = np.nonzero(np.diff(pos) > 1.5 * step)[0]
            gaps += [f"gap after {pos[i]:.1f} mm ({(pos[i + 1] - pos[i]) / step - 1:.0f} slice(s))" for i in holes]
    out.append(_result("series_complete", "序列完整（无缺失层面/实例）", gaps))
    return out
