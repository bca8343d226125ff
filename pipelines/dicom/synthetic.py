"""Synthetic but realistic CT series (pydicom) for tests, demos and the ingest benchmark.

No real CT volume can be had offline, so we generate one: an axial 512x512 series with consistent geometry
(ImagePositionPatient stepping by the slice thickness along the normal of ImageOrientationPatient, one Frame of
Reference), HU values through RescaleSlope/Intercept, and a body-like phantom with noise so compression behaves
as on real images.
"""
from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

UID_ROOT = "1.2.826.0.1.3680043.8.498."


def ct_series(out_dir: Path, *, slices: int = 300, size: int = 512, patient_id: str = "MRN0001",
              study_uid: str | None = None, series_uid: str | None = None, accession: str = "ACC0001",
              study_date: date = date(2026, 11, 2), seed: int = 7, thickness: float = 1.25,
              transfer_syntax: str = ExplicitVRLittleEndian) -> list[Path]:
    """Write ``slices`` CT files into ``out_dir``; returns their paths in slice order."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid(UID_ROOT)
    series_uid = series_uid or generate_uid(UID_ROOT)
    frame_uid = generate_uid(UID_ROOT)
    spacing = 350.0 / size
    yy, xx = np.mgrid[:size, :size]
    cy = cx = size / 2
    body = ((xx - cx) / (size * 0.42)) ** 2 + ((yy - cy) / (size * 0.32)) ** 2 <= 1
    base = np.where(body, 40, -1000).astype(np.int16)  # soft tissue in air
    paths = []
    for i in range(slices):
        z = -thickness * i
        lung_r = size * (0.10 + 0.04 * np.sin(i / max(slices, 1) * np.pi))
        lungs = (((xx - cx * 0.62) ** 2 + (yy - cy) ** 2) <= lung_r ** 2) | (
            ((xx - cx * 1.38) ** 2 + (yy - cy) ** 2) <= lung_r ** 2)
        hu = base.copy()
        hu[lungs & body] = -850
        hu[((xx - cx) ** 2 + (yy - cy * 1.45) ** 2) <= (size * 0.03) ** 2] = 700  # spine
        hu = hu + rng.normal(0, 12, hu.shape).astype(np.int16)
        stored = (hu + 1024).clip(0, 4095).astype(np.uint16)
        sop_uid = generate_uid(UID_ROOT)
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = transfer_syntax
        meta.ImplementationClassUID = UID_ROOT + "1"
        path = out_dir / f"CT{i + 1:04d}.dcm"
        ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\x00" * 128)
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, sop_uid
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientBirthDate = "TEST^PATIENT", patient_id, "O", ""
        ds.StudyDate = ds.SeriesDate = ds.ContentDate = study_date.strftime("%Y%m%d")
        ds.StudyTime = ds.SeriesTime = ds.ContentTime = "083000"
        ds.AccessionNumber, ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = accession, "1", 2, i + 1
        ds.Modality, ds.BodyPartExamined, ds.StudyDescription = "CT", "CHEST", "CT chest plain"
        ds.SeriesDescription, ds.Manufacturer = "Axial 1.25mm", "WANYING-SYNTHETIC"
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.ImagePositionPatient = [-175.0, -175.0, round(z, 3)]
        ds.SliceLocation, ds.SliceThickness = round(z, 3), thickness
        ds.PixelSpacing = [round(spacing, 6), round(spacing, 6)]
        ds.KVP, ds.PatientPosition = 120, "HFS"
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
        ds.WindowCenter, ds.WindowWidth = 40, 400
        ds.PixelData = stored.tobytes()
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
