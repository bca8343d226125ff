"""Write synthetic radiographs and series as DICOM (explicit VR little endian, the lossless original)."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

SOP_CLASS = {"CR": "1.2.840.10008.5.1.4.1.1.1", "DX": "1.2.840.10008.5.1.4.1.1.1.1",
             "CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4"}


def _base(modality: str, patient: str, study_uid: str, series_uid: str, tags: dict) -> FileDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: descriptions are in Chinese
    ds.Modality = modality
    ds.PatientID = patient
    ds.PatientName = "QC^PHANTOM"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyDate = dt.date(2026, 1, 1).strftime("%Y%m%d")
    ds.SeriesNumber = 1
    ds.Manufacturer = "wanying-qc-synth"
    for key, value in tags.items():
        if value:
            setattr(ds, key, value)
    ds.SamplesPerPixel = 1
    ds.PixelRepresentation = 0
    return ds


def _pixels(ds, arr: np.ndarray, bits: int):
    ds.Rows, ds.Columns = arr.shape
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, bits, bits - 1
    ds.PixelData = np.ascontiguousarray(arr.astype(np.uint16)).tobytes()


def write_radiograph(path: Path, values: np.ndarray, spacing: float, tags: dict, patient: str,
                     full_scale: int = 4095) -> None:
    ds = _base("DX", patient, generate_uid(), generate_uid(), tags)
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.ImagerPixelSpacing = ds.PixelSpacing = [spacing, spacing]
    ds.InstanceNumber = 1
    _pixels(ds, np.clip(np.round(values), 0, full_scale), int(np.log2(full_scale + 1)))
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


def write_series(folder: Path, volume: np.ndarray, positions: list[float], spacing: tuple[float, float, float],
                 modality: str, tags: dict, patient: str, sagittal: bool = False, keep=None) -> None:
    """One file per slice. CT volume in HU (stored +1024), MR signal scaled to 0..4095. ``keep`` lists the
    slice indices written (missing slices are simply not written)."""
    folder.mkdir(parents=True, exist_ok=True)
    study, series, frame = generate_uid(), generate_uid(), generate_uid()
    if modality == "CT":
        stored = np.clip(np.round(volume + 1024), 0, 4095)
    else:
        stored = np.clip(np.round(volume * 1000), 0, 4095)
    n, rows, cols = volume.shape
    keep = range(n) if keep is None else keep
    for number, i in enumerate(keep, start=1):
        ds = _base(modality, patient, study, series, tags)
        ds.FrameOfReferenceUID = frame
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.PixelSpacing = [spacing[1], spacing[2]]
        ds.SliceThickness = spacing[0]
        ds.InstanceNumber = number
        if sagittal:
            ds.ImageOrientationPatient = [0, 1, 0, 0, 0, -1]
            ds.ImagePositionPatient = [float(positions[i]), -cols * spacing[2] / 2, rows * spacing[1] / 2]
        else:
            ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
            ds.ImagePositionPatient = [-cols * spacing[2] / 2, -rows * spacing[1] / 2, float(positions[i])]
        if modality == "CT":
            ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = -1024, 1, "HU"
            ds.KVP = 120
        _pixels(ds, stored[i], 12)
        ds.save_as(folder / f"IM{number:04d}.dcm", enforce_file_format=True)


def real_chest() -> pydicom.Dataset:
    """The real CR chest PA from pydicom-data (MONOCHROME1, 15-bit)."""
    from pydicom.data import get_testdata_file

    return pydicom.dcmread(get_testdata_file("RG1_UNCR.dcm"))
