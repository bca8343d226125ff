"""Write a planned study as real DICOM Part 10 files, as the hospital's PACS would hold them.

These are the hospital's own files: they carry the patient's name and the hospital's patient ID, and live only in
the data directory. Bytes are deterministic for a given world, so a file already present with the right SHA-256
is left alone, and a study whose manifest still verifies is not even rendered again.
"""
from __future__ import annotations

import bisect
import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

from pipelines.dicom.parse import split_part10
from pipelines.storage.index import InstanceRow
from pipelines.storage.manifest import build_manifest
from wanying.demo.images import CT_INTERCEPT, RenderedSeries, render
from wanying.demo.model import Hospital, Order, Patient, SeriesPlan, Study, Visit

GENERATOR_VERSION = "3"  # bump when rendering or headers change: cached studies are then rendered again

SOP_CLASS = {
    "CT": "1.2.840.10008.5.1.4.1.1.2",  # CT Image Storage
    "MR": "1.2.840.10008.5.1.4.1.1.4",  # MR Image Storage
    "DX": "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "CR": "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
}


@dataclass(frozen=True)
class StoredFile:
    path: str  # relative to the output folder
    series_uid: str
    sop_uid: str
    sop_class_uid: str
    modality: str
    sha256: str  # of the whole file
    dataset_sha256: str  # of the dataset after the File Meta group (what a C-STORE would carry)
    size: int


@dataclass(frozen=True)
class StudyFiles:
    study_uid: str
    files: tuple[StoredFile, ...]
    written: int  # files (re)written by this run

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    def instance_count(self, series_uid: str) -> int:
        return sum(1 for f in self.files if f.series_uid == series_uid)


def manifest_sha256(study_uid: str, hospital: str, files: tuple[StoredFile, ...] | list[StoredFile]) -> str:
    """The platform's canonical study manifest (:func:`pipelines.storage.manifest.build_manifest`) of these
    files, as ingest computes it when it receives them as Part 10 files: the same study, the same hash."""
    rows = [InstanceRow(study_uid=study_uid, series_uid=f.series_uid, sop_uid=f.sop_uid, version=1,
                        sop_class_uid=f.sop_class_uid, transfer_syntax=ExplicitVRLittleEndian, object_sha256=f.sha256,
                        dataset_sha256=f.dataset_sha256, size=f.size, received_at="", hospital=hospital,
                        source_ae="", modality=f.modality)
            for f in files]
    return build_manifest(study_uid, rows).sha256


def study_folder(out: Path, hospital: str, study: Study) -> Path:
    return out / hospital / study.uid


def write_study(out: Path, seed: int, hospital: Hospital, patient: Patient, visit: Visit, order: Order) -> StudyFiles:
    """Write (or verify) every file of ``order.study``; returns what is stored."""
    study = order.study
    assert study is not None
    folder = study_folder(out, hospital.code, study)
    cached = _verified_manifest(folder, out)
    if cached is not None:
        return StudyFiles(study.uid, cached, 0)
    z_offset = _table_offset(seed, study)
    files, written = [], 0
    for series in study.series:
        rendered = render(seed, study, series, z_offset)
        encoder = SeriesEncoder(series_header(hospital, patient, visit, order, series, rendered))
        for i, pixels in enumerate(rendered.frames):
            data = encoder.encode(instance_dataset(series, rendered, i, pixels, seed))
            rel = Path(hospital.code) / study.uid / f"S{series.number:03d}" / f"IM{i + 1:05d}.dcm"
            digest = hashlib.sha256(data).hexdigest()
            dataset_digest = hashlib.sha256(memoryview(data)[split_part10(data)[1]:]).hexdigest()
            written += _write_if_changed(out / rel, data, digest)
            files.append(StoredFile(rel.as_posix(), series.uid, series.instance_uid(seed, i), encoder.sop_class,
                                    series.modality, digest, dataset_digest, len(data)))
    manifest = {"generator": GENERATOR_VERSION, "study_uid": study.uid, "files": [asdict(f) for f in files]}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return StudyFiles(study.uid, tuple(files), written)


def _verified_manifest(folder: Path, out: Path) -> tuple[StoredFile, ...] | None:
    path = folder / "manifest.json"
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
        files = tuple(StoredFile(**f) for f in doc["files"])
    except (ValueError, KeyError, TypeError):
        return None
    if doc.get("generator") != GENERATOR_VERSION:
        return None
    for f in files:
        target = out / f.path
        if not target.is_file() or target.stat().st_size != f.size or _sha256_file(target) != f.sha256:
            return None
    return files


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_if_changed(path: Path, data: bytes, digest: str) -> int:
    if path.is_file() and path.stat().st_size == len(data) and _sha256_file(path) == digest:
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return 1


def _table_offset(seed: int, study: Study) -> float:
    """Where the scanner's table put the top of the scanned region, in patient z (mm): differs per study."""
    h = int.from_bytes(hashlib.sha256(f"table|{seed}|{study.uid}".encode()).digest()[:4], "big")
    return -50.0 - (h % 4000) / 10.0


def _age(patient: Patient, on: date) -> str:
    years = patient.age_on(on)
    if years >= 1:
        return f"{years:03d}Y"
    return f"{max(1, (on - patient.birth_date).days // 30):03d}M"


def series_header(hospital: Hospital, patient: Patient, visit: Visit, order: Order, series: SeriesPlan,
                   rendered: RenderedSeries) -> Dataset:
    study = order.study
    assert study is not None
    when = study.performed_at
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL" if series.template.plane == "axial" else "OTHER"]
    ds.SOPClassUID = SOP_CLASS[series.modality]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = ds.AcquisitionDate = when.strftime("%Y%m%d")
    ds.StudyTime = when.strftime("%H%M%S")
    ds.SeriesTime = ds.ContentTime = ds.AcquisitionTime = (when.replace(second=0)).strftime("%H%M%S")
    ds.AccessionNumber = study.accession
    ds.Modality = series.modality
    ds.Manufacturer = "Wanying Demo (synthetic)"
    ds.InstitutionName = hospital.name
    ds.ReferringPhysicianName = visit.doctor_id
    ds.StationName = f"{hospital.code}-{series.modality}1"
    ds.StudyDescription = study.description
    ds.SeriesDescription = series.description
    ds.InstitutionalDepartmentName = "放射科"
    ds.ManufacturerModelName = f"Synthetic {series.modality}"
    ds.PatientName = f"{patient.surname}^{patient.given}" if visit.identified or patient.id_number is None else "无名氏"
    ds.PatientID = visit.mrn
    ds.IssuerOfPatientID = hospital.code
    if visit.identified and patient.id_number:
        ds.OtherPatientIDs = patient.id_number  # where Chinese PACS usually keep the 身份证号 beside the MRN
    if visit.identified or patient.id_number is None:
        ds.PatientBirthDate = patient.birth_date.strftime("%Y%m%d")
    ds.PatientSex = patient.sex
    ds.PatientAge = _age(patient, when.date())
    ds.BodyPartExamined = series.body_part
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series.uid
    ds.StudyID = study.accession[-8:]
    ds.SeriesNumber = series.number
    ds.FrameOfReferenceUID = series.frame_of_reference_uid
    ds.PositionReferenceIndicator = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows, ds.Columns = series.rows, series.columns
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter = [round(c, 1) for c, _, _ in rendered.windows]
    ds.WindowWidth = [round(w, 1) for _, w, _ in rendered.windows]
    ds.WindowCenterWidthExplanation = [e for _, _, e in rendered.windows]
    if series.template.plane == "projection":
        _radiograph_tags(ds, series)
    else:
        ds.PatientPosition = "HFS" if series.body_part != "LSPINE" else "FFS"
        ds.PixelSpacing = [series.pixel_mm, series.pixel_mm]
        ds.SliceThickness = series.slice_mm if series.modality == "CT" else round(series.slice_mm * 0.8, 2)
        ds.SpacingBetweenSlices = series.slice_mm
        ds.ImageOrientationPatient = list(rendered.orientation)
        ds.AcquisitionNumber = 1
        if series.modality == "CT":
            _ct_tags(ds, series)
        else:
            _mr_tags(ds, series)
    return ds


def _ct_tags(ds: Dataset, series: SeriesPlan) -> None:
    ds.KVP = 120
    ds.XRayTubeCurrent = 200 if series.body_part != "HEAD" else 280
    ds.ExposureTime = 500
    ds.ConvolutionKernel = "B70f" if series.body_part == "CHEST" else "H30s" if series.body_part == "HEAD" else "B30f"
    ds.DataCollectionDiameter = 500
    ds.ReconstructionDiameter = round(series.pixel_mm * series.columns, 1)
    ds.GantryDetectorTilt = 0
    ds.TableHeight = 150
    ds.RotationDirection = "CW"
    ds.RescaleIntercept = CT_INTERCEPT
    ds.RescaleSlope = 1
    ds.RescaleType = "HU"


def _mr_tags(ds: Dataset, series: SeriesPlan) -> None:
    t2 = series.template.sequence == "T2"
    ds.ScanningSequence = "SE"
    ds.SequenceVariant = "SK"
    ds.ScanOptions = ""
    ds.MRAcquisitionType = "2D"
    ds.SequenceName = "tse2d1" if t2 else "se2d1"
    ds.RepetitionTime = 4000 if t2 else 450
    ds.EchoTime = 96 if t2 else 12
    ds.EchoTrainLength = 15 if t2 else 1
    ds.MagneticFieldStrength = 1.5
    ds.ImagingFrequency = 63.6
    ds.ImagedNucleus = "1H"
    ds.FlipAngle = 150 if t2 else 90
    ds.ReceiveCoilName = "Head" if series.body_part == "HEAD" else "Spine"


def _radiograph_tags(ds: Dataset, series: SeriesPlan) -> None:
    t = series.template
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.ViewPosition = t.view
    ds.PatientOrientation = ["P", "F"] if t.view == "LL" else ["L", "F"]
    ds.ImagerPixelSpacing = [series.pixel_mm, series.pixel_mm]
    ds.KVP = 125 if series.body_part == "CHEST" else 70 if series.body_part == "KNEE" else 85
    ds.ExposureTime = 10 if series.body_part == "CHEST" else 50
    ds.XRayTubeCurrent = 250
    ds.DistanceSourceToDetector = 1800 if series.body_part == "CHEST" else 1100
    ds.PixelIntensityRelationship = "LOG"
    ds.PixelIntensityRelationshipSign = 1
    ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = 0, 1, "US"
    ds.BurnedInAnnotation = "NO"
    ds.Laterality = ""
    if series.modality == "DX":
        ds.PresentationIntentType = "FOR PRESENTATION"
        ds.DetectorType = "DIRECT"
        ds.PixelSpacing = [series.pixel_mm, series.pixel_mm]
        ds.PixelSpacingCalibrationType = "GEOMETRY"
    else:
        ds.PlateType = "ST-VI"


#: Elements that differ between the instances of a series; everything else is encoded once per series.
VARIABLE_TAGS = (0x00080018, 0x00200013, 0x00200032, 0x00200062, 0x00201041, 0x7FE00010)


class SeriesEncoder:
    """Encodes the instances of one series as Part 10 bytes, identical to ``Dataset.save_as`` output.

    pydicom spends most of its time re-encoding the ~80 header elements that every instance of a series shares;
    here they are encoded once, as the byte runs between the per-instance elements, and spliced.
    """

    def __init__(self, header: Dataset) -> None:
        self.charset = header.get("SpecificCharacterSet", "ISO_IR 192")
        groups = [Dataset() for _ in range(len(VARIABLE_TAGS) + 1)]
        for elem in header:
            if elem.tag in VARIABLE_TAGS:
                raise ValueError(f"{elem.keyword} varies per instance: pass it to encode()")
            groups[bisect.bisect(VARIABLE_TAGS, elem.tag)].add(elem)
        self.sop_class = header.SOPClassUID
        self.segments = [self._encode(g) for g in groups]

    def _encode(self, ds: Dataset) -> bytes:
        fp = DicomBytesIO()
        fp.is_little_endian, fp.is_implicit_VR = True, False
        write_dataset(fp, ds, parent_encoding=self.charset)
        return fp.getvalue()

    def encode(self, instance: Dataset) -> bytes:
        """``instance`` holds only per-instance elements (SOPInstanceUID, InstanceNumber, PixelData...)."""
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = self.sop_class
        meta.MediaStorageSOPInstanceUID = instance.SOPInstanceUID
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
        meta.ImplementationVersionName = "WANYING_DEMO_1"
        fp = DicomBytesIO()
        fp.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(fp, meta, enforce_standard=True)
        parts = [fp.getvalue(), self.segments[0]]
        for i, tag in enumerate(VARIABLE_TAGS):
            if tag in instance:
                single = Dataset()
                single.add(instance[tag])
                parts.append(self._encode(single))
            parts.append(self.segments[i + 1])
        return b"".join(parts)


def instance_dataset(series: SeriesPlan, rendered: RenderedSeries, index: int, pixels: np.ndarray,
                     seed: int) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = series.instance_uid(seed, index)
    ds.InstanceNumber = index + 1
    if rendered.positions is not None:
        ds.ImagePositionPatient = [round(v, 4) for v in rendered.positions[index]]
        ds.SliceLocation = round(rendered.slice_locations[index], 4)
    if rendered.laterality is not None and rendered.laterality[index]:
        ds.ImageLaterality = rendered.laterality[index]
    ds.add_new(0x7FE00010, "OW", np.ascontiguousarray(pixels, dtype="<u2").tobytes())  # PixelData
    return ds
