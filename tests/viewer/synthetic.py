"""Synthetic CT series with known geometry and HU regions, for the viewer's browser tests and load benchmark.

Axial slices, z ascending with the instance number, identity orientation. In every slice: air (-1000 HU), a
water-like cylinder (40 HU, radius 0.3125 of the width) centred in the image, a bone rod (1000 HU) to its right and
a checkerboard patch of 20/60 HU (mean 40, SD 20) in the cylinder's upper left. One slice (``BEAD_SLICE``) has a
bright bead (2000 HU) at ``BEAD`` that only a MIP slab shows on other slices.
"""
from __future__ import annotations

from copy import deepcopy
from dataclasses import dataclass
from datetime import date

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

AIR, WATER, BONE, BEAD_HU = -1000, 40, 1000, 2000
CHECKER_LOW, CHECKER_HIGH = 20, 60
INTERCEPT = -1024


@dataclass(frozen=True)
class Geometry:
    size: int = 128  # rows = columns
    slices: int = 40
    pixel_mm: float = 0.8
    slice_mm: float = 2.5
    z0: float = -50.0

    def px(self, fraction: float) -> int:
        return int(round(self.size * fraction))

    @property
    def centre(self) -> int:
        return self.size // 2

    @property
    def radius(self) -> int:
        return self.px(0.3125)

    @property
    def rod(self) -> tuple[int, int, int]:  # row, column, radius
        return self.centre, self.centre + self.px(0.1875), max(2, self.px(0.04))

    @property
    def checker(self) -> tuple[int, int, int, int]:  # row0, row1, col0, col1 (end exclusive)
        return self.px(0.34), self.px(0.5), self.px(0.28), self.px(0.44)

    @property
    def bead_slice(self) -> int:
        return self.slices // 2 + max(2, self.slices // 10)

    @property
    def bead(self) -> tuple[int, int]:  # row, column
        return self.centre + self.px(0.2), self.centre

    def origin(self, k: int) -> tuple[float, float, float]:
        half = self.size * self.pixel_mm / 2
        return (-half, -half, self.z0 + k * self.slice_mm)

    def world(self, row: float, column: float, k: int) -> tuple[float, float, float]:
        x0, y0, z = self.origin(k)
        return (x0 + column * self.pixel_mm, y0 + row * self.pixel_mm, z)


def slice_hu(g: Geometry, k: int) -> np.ndarray:
    rows, cols = np.mgrid[0:g.size, 0:g.size]
    hu = np.full((g.size, g.size), AIR, dtype=np.int32)
    hu[(rows - g.centre) ** 2 + (cols - g.centre) ** 2 <= g.radius**2] = WATER
    r0, r1, c0, c1 = g.checker
    patch = np.where((rows[r0:r1, c0:c1] + cols[r0:r1, c0:c1]) % 2 == 0, CHECKER_LOW, CHECKER_HIGH)
    hu[r0:r1, c0:c1] = patch
    rr, rc, rrad = g.rod
    hu[(rows - rr) ** 2 + (cols - rc) ** 2 <= rrad**2] = BONE
    if k == g.bead_slice:
        br, bc = g.bead
        hu[br - 1:br + 2, bc - 1:bc + 2] = BEAD_HU
    return hu


@dataclass(frozen=True)
class Study:
    study_uid: str
    series_uid: str
    frame_of_reference: str
    geometry: Geometry
    datasets: list[Dataset]


def make_study(g: Geometry, *, patient_id: str = "SYN0001", study_date: date = date(2026, 11, 20),
               description: str = "胸部CT平扫", slope: float = 1) -> Study:
    """``slope``: RescaleSlope (stored = (HU - INTERCEPT) / slope; 0.5 gives HU that need floating point)."""
    study_uid, series_uid, frame = generate_uid(), generate_uid(), generate_uid()
    datasets = []
    for k in range(g.slices):
        ds = Dataset()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds.file_meta = meta
        ds.SpecificCharacterSet = "ISO_IR 192"
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame
        ds.PatientID, ds.PatientName = patient_id, "SYNTHETIC^PHANTOM"
        ds.StudyDate = ds.SeriesDate = study_date.strftime("%Y%m%d")
        ds.StudyTime = "090000"
        ds.StudyID, ds.AccessionNumber = "1", f"ACC{study_date:%Y%m%d}"
        ds.StudyDescription, ds.SeriesDescription = description, "Axial 2.5mm"
        ds.Modality, ds.SeriesNumber, ds.InstanceNumber = "CT", 2, k + 1
        ds.ImagePositionPatient = [f"{v:.4f}" for v in g.origin(k)]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [g.pixel_mm, g.pixel_mm]
        ds.SliceThickness = g.slice_mm
        ds.SliceLocation = g.origin(k)[2]
        ds.Rows = ds.Columns = g.size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = INTERCEPT, slope, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = np.round((slice_hu(g, k) - INTERCEPT) / slope).astype("<u2").tobytes()
        datasets.append(ds)
    return Study(study_uid, series_uid, frame, g, datasets)


def part10(ds: Dataset) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def another_series(study: Study, *, number: int = 3, description: str = "Axial 2.5mm 骨算法") -> Study:
    """A second series of the same study (same phantom, new UIDs): for series lists and switching."""
    series_uid = generate_uid()
    datasets = []
    for ds in study.datasets:
        copy = deepcopy(ds)
        copy.SOPInstanceUID = copy.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        copy.SeriesInstanceUID, copy.SeriesNumber, copy.SeriesDescription = series_uid, number, description
        datasets.append(copy)
    return Study(study.study_uid, series_uid, study.frame_of_reference, study.geometry, datasets)
