"""The imaging exams the demo hospitals order, and the series each one produces.

Every hospital names and codes the same exam its own way (``names`` lists the variants seen in real HIS
catalogs); mapping them to standard items is the code-mapping pipeline's job, not the demo's.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SeriesTemplate:
    kind: str  # which synthetic anatomy renders it (see ``anatomy``)
    modality: str
    description: str
    plane: str  # "axial", "sagittal" or "projection"
    coverage_mm: float = 0.0  # along the slice normal (cross-sectional series)
    fov_mm: float = 0.0
    view: str = ""  # radiograph ViewPosition
    sequence: str = ""  # MR weighting


@dataclass(frozen=True)
class ExamItem:
    key: str
    modality: str  # "XR" means DX or CR, whichever the hospital has
    body_part: str  # DICOM BodyPartExamined
    region: str  # department group in ``names.DEPARTMENTS``
    names: tuple[str, ...]
    series: tuple[SeriesTemplate, ...]
    weight: float


ITEMS: tuple[ExamItem, ...] = (
    ExamItem("CT_CHEST", "CT", "CHEST", "chest", ("CT胸部平扫", "胸部CT平扫", "胸部平扫CT", "CT-胸部(平扫)"),
             (SeriesTemplate("ct_chest", "CT", "胸部平扫 Chest", "axial", 240, 360),), 3.0),
    ExamItem("CT_HEAD", "CT", "HEAD", "head", ("CT头颅平扫", "头颅CT平扫", "颅脑CT平扫", "CT颅脑平扫"),
             (SeriesTemplate("ct_head", "CT", "头颅平扫 Head", "axial", 150, 240),), 2.0),
    ExamItem("CT_ABDOMEN", "CT", "ABDOMEN", "abdomen", ("CT上腹部平扫", "上腹部CT平扫", "CT腹部(上腹)平扫"),
             (SeriesTemplate("ct_abdomen", "CT", "上腹部平扫 Abdomen", "axial", 200, 380),), 1.2),
    ExamItem("CT_CHEST_ABDOMEN", "CT", "CHEST", "abdomen",
             ("胸部+上腹部CT平扫", "CT胸部+上腹部平扫", "胸腹部CT平扫"),
             (SeriesTemplate("ct_chest_abdomen", "CT", "胸腹部平扫 Chest-Abdomen", "axial", 320, 380),), 0.6),
    ExamItem("MR_HEAD", "MR", "HEAD", "head", ("MR头颅平扫", "头颅MRI平扫", "颅脑MR平扫", "磁共振头颅平扫"),
             (SeriesTemplate("mr_head_ax", "MR", "T2WI TRA", "axial", 120, 230, sequence="T2"),
              SeriesTemplate("mr_head_sag", "MR", "T1WI SAG", "sagittal", 100, 240, sequence="T1")), 1.0),
    ExamItem("MR_LSPINE", "MR", "LSPINE", "spine", ("腰椎MRI平扫", "MR腰椎平扫", "腰椎磁共振平扫"),
             (SeriesTemplate("mr_lspine_sag", "MR", "T2WI SAG", "sagittal", 60, 300, sequence="T2"),
              SeriesTemplate("mr_lspine_ax", "MR", "T2WI TRA L4/5", "axial", 40, 200, sequence="T2")), 0.8),
    ExamItem("XR_CHEST", "XR", "CHEST", "chest", ("DR胸部正位", "胸部正位片", "胸片(正位)", "X线胸部正位"),
             (SeriesTemplate("xr_chest_pa", "XR", "胸部 后前位", "projection", fov_mm=430, view="PA"),), 3.0),
    ExamItem("XR_KNEE", "XR", "KNEE", "knee", ("双膝关节正侧位", "DR双膝关节正侧位", "双膝正侧位片"),
             (SeriesTemplate("xr_knee_ap", "XR", "双膝 正位", "projection", fov_mm=350, view="AP"),
              SeriesTemplate("xr_knee_lat", "XR", "膝关节 侧位", "projection", fov_mm=240, view="LL")), 1.2),
    ExamItem("XR_LSPINE", "XR", "LSPINE", "spine", ("腰椎正侧位", "DR腰椎正侧位", "腰椎正侧位片"),
             (SeriesTemplate("xr_lspine_ap", "XR", "腰椎 正位", "projection", fov_mm=350, view="AP"),
              SeriesTemplate("xr_lspine_lat", "XR", "腰椎 侧位", "projection", fov_mm=350, view="LL")), 1.2),
)

BY_KEY = {item.key: item for item in ITEMS}

#: CT/MR modalities need equipment a first-level centre does not have.
CROSS_SECTIONAL = {"CT", "MR"}


def local_code(style: int, item_index: int, modality: str, base: int) -> str:
    """The item code a hospital's HIS uses; four house styles."""
    mod = {"XR": "DR"}.get(modality, modality)
    if style == 0:
        return f"{mod}{base + item_index:04d}"
    if style == 1:
        return f"2{base % 100:02d}{item_index + 1:03d}"
    if style == 2:
        return f"FS-{mod}-{item_index + 1:03d}"
    return f"{mod}.{base % 10}.{item_index + 1:02d}"
