"""The demo world: deterministic from its seed, realistic identifiers, consistent image geometry."""
from __future__ import annotations

import re
from collections import defaultdict
from datetime import timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest

from pipelines.crypto import Keyring
from pipelines.identity import normalise_id_number, normalise_phone
from schemas.registry import REGISTRY
from wanying.demo import build_world
from wanying.demo.catalog import BY_KEY
from wanying.demo.dicom_writer import SeriesEncoder, StudyFiles, instance_dataset, series_header, write_study
from wanying.demo.images import render
from wanying.demo.timeline import world_events

SEED = 20261128


@pytest.fixture(scope="module")
def world():
    return build_world(SEED, 0.2)


def _no_files(world) -> dict[str, StudyFiles]:
    return {s.uid: StudyFiles(s.uid, (), 0) for _, _, s in world.studies()}


def test_same_seed_gives_the_same_world_and_event_ids(world):
    again = build_world(SEED, 0.2)
    assert again == world
    ids_a = [e.event_id for e in world_events(world, Keyring.generate(), _no_files(world))]
    ids_b = [e.event_id for e in world_events(again, Keyring.generate(), _no_files(again))]
    assert ids_a == ids_b
    assert len(set(ids_a)) == len(ids_a)
    assert all(i.version == 7 for i in ids_a)


def test_a_different_seed_gives_a_different_world(world):
    other = build_world(SEED + 1, 0.2)
    assert [p.name for p in other.patients] != [p.name for p in world.patients]
    assert {s.uid for _, _, s in other.studies()}.isdisjoint({s.uid for _, _, s in world.studies()})
    ids = {e.event_id for e in world_events(world, Keyring.generate(), _no_files(world))}
    other_ids = {e.event_id for e in world_events(other, Keyring.generate(), _no_files(other))}
    assert ids.isdisjoint(other_ids)


def test_scale_grows_the_world():
    small, large = build_world(SEED, 0.2), build_world(SEED, 1.0)
    assert len(large.patients) > len(small.patients)
    assert large.plan.ct_matrix > small.plan.ct_matrix


def test_people_have_valid_id_numbers_phones_and_chinese_names(world):
    anchor = world.anchor
    with_id = [p for p in world.patients if p.id_number]
    assert len(with_id) >= len(world.patients) - 3
    assert any(p.id_number is None for p in world.patients)
    for p in with_id:
        assert normalise_id_number(p.id_number, today=anchor) == p.id_number
        assert p.id_number.startswith("34")
        assert p.id_number[6:14] == p.birth_date.strftime("%Y%m%d")
        assert int(p.id_number[16]) % 2 == (1 if p.sex == "M" else 0)
    for p in world.patients:
        assert normalise_phone(p.phone) == p.phone
        assert 2 <= len(p.name) <= 3 and all("\u4e00" <= c <= "\u9fff" for c in p.name)


def test_hospitals_have_levels_cities_alliances_and_their_own_item_names(world):
    assert all(re.fullmatch(r"[A-Z0-9_-]{2,32}", h.code) for h in world.hospitals)
    assert {"三级甲等", "三级乙等", "二级甲等", "二级乙等", "一级"} <= {h.level for h in world.hospitals}
    assert len({h.city for h in world.hospitals}) >= 8
    alliances = defaultdict(list)
    for h in world.hospitals:
        if h.alliance:
            alliances[h.alliance].append(h)
    assert alliances and all(len(members) >= 2 for members in alliances.values())
    assert len({h.item_codes["CT_CHEST"] for h in world.hospitals}) > 3
    assert len({h.item_name(BY_KEY["CT_CHEST"]) for h in world.hospitals}) > 1


def test_times_lie_in_the_18_months_before_the_anchor_in_shanghai_time(world):
    events = world_events(world, Keyring.generate(), _no_files(world))
    for e in events:
        assert e.occurred_at.utcoffset() == timedelta(hours=8)
        assert world.anchor - timedelta(days=560) <= e.occurred_at.date() <= world.anchor + timedelta(days=7)
        REGISTRY.validate(e)
    assert {"VisitStarted", "ExamOrdered", "ExamCancelled", "StudyReceived", "StudyCompleted", "ReportFinalized",
            "ReportAmended", "PatientLinked", "PatientOpened", "DoctorSignedIn"} <= {e.type for e in events}


def test_a_patient_has_chest_ct_at_three_hospitals_within_weeks(world):
    chest = [(v, o) for v, o in world.orders() if v.patient_key == world.repeat_patient and o.item_key == "CT_CHEST"]
    assert len({v.hospital for v, _ in chest}) >= 3
    times = sorted(o.study.performed_at for _, o in chest)
    assert times[-1] - times[0] < timedelta(days=60)
    assert any(o.report.amendment is not None for _, o in chest)


def test_unidentified_patient_is_linked_later(world):
    (link,) = world.links
    visits = [v for v in world.visits if v.patient_key == link.patient_key]
    assert [v.identified for v in visits] == [False, True]
    assert visits[0].started_at < link.at < visits[1].started_at


def test_ct_series_geometry_is_consistent(tmp_path: Path, world):
    visit, order, study = next((v, o, s) for v, o, s in world.studies() if o.item_key == "CT_CHEST")
    stored = write_study(tmp_path, world.seed, world.hospital(visit.hospital), world.patient(visit.patient_key),
                         visit, order)
    datasets = [pydicom.dcmread(tmp_path / f.path) for f in stored.files]
    (series,) = study.series
    assert len(datasets) == series.instances >= 20
    first = datasets[0]
    orientation = np.array(first.ImageOrientationPatient, float)
    normal = np.cross(orientation[:3], orientation[3:])
    along = [float(np.dot(np.array(d.ImagePositionPatient, float), normal)) for d in datasets]
    steps = np.diff(along)
    assert np.allclose(np.abs(steps), float(first.SpacingBetweenSlices)) and len(set(np.sign(steps))) == 1
    assert float(first.SliceThickness) == float(first.SpacingBetweenSlices) == series.slice_mm
    assert {d.FrameOfReferenceUID for d in datasets} == {series.frame_of_reference_uid}
    assert {d.StudyInstanceUID for d in datasets} == {study.uid}
    assert len({d.SOPInstanceUID for d in datasets}) == len(datasets)
    assert all(d.SOPInstanceUID.startswith("2.25.") for d in datasets)
    middle = datasets[len(datasets) // 2]
    hu = middle.pixel_array.astype(float) * float(middle.RescaleSlope) + float(middle.RescaleIntercept)
    assert middle.pixel_array.shape == (series.rows, series.columns)
    assert hu[0, 0] < -900  # air in the corner
    centre = hu[series.rows // 2 - 5 : series.rows // 2 + 5, series.columns // 2 - 5 : series.columns // 2 + 5]
    assert -200 < centre.mean() < 200  # mediastinum: soft tissue
    assert (hu < -700).mean() > 0.2 and (hu > 300).any()  # lungs and air, and bone
    assert list(map(float, first.PixelSpacing)) == [series.pixel_mm] * 2


def test_radiographs_and_mr_have_their_tags(tmp_path: Path):
    world = build_world(SEED, 1.0)  # rendered one image at a time: no files for the whole world
    by_kind = {}
    for v, o, s in world.studies():
        for sp in s.series:
            by_kind.setdefault(sp.template.kind, (v, o, s, sp))
    checked = []
    for kind in ("xr_chest_pa", "xr_knee_lat", "xr_lspine_ap", "mr_head_sag", "mr_lspine_sag"):
        v, o, s, sp = by_kind[kind]
        rendered = render(world.seed, s, sp, -100.0)
        header = series_header(world.hospital(v.hospital), world.patient(v.patient_key), v, o, sp, rendered)
        data = SeriesEncoder(header).encode(instance_dataset(sp, rendered, 0, rendered.frames[0], world.seed))
        path = tmp_path / f"{kind}.dcm"
        path.write_bytes(data)
        ds = pydicom.dcmread(path)
        assert ds.pixel_array.shape == (sp.rows, sp.columns)
        assert ds.PatientID == v.mrn and ds.AccessionNumber == o.accession
        if sp.template.plane == "projection":
            assert ds.ViewPosition == sp.template.view and ds.BodyPartExamined == sp.body_part
            assert list(map(float, ds.ImagerPixelSpacing)) == [sp.pixel_mm] * 2
            assert ds.Modality in ("DX", "CR") and ds.PatientOrientation
            body = ds.pixel_array[ds.pixel_array > 200]
            assert body.size > 0.2 * ds.pixel_array.size  # the body fills the film
        else:
            assert list(map(float, ds.ImageOrientationPatient)) == [0, 1, 0, 0, 0, -1]
            assert ds.Modality == "MR" and ds.MRAcquisitionType == "2D" and ds.RepetitionTime > 0
        checked.append(kind)
    assert by_kind["xr_knee_lat"][3].instances == 2
    assert len(checked) == 5


def test_fast_encoder_matches_pydicom_save_as(world):
    import copy
    import io

    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID

    v, o, s = next((v, o, s) for v, o, s in world.studies() if o.item_key == "CT_CHEST")
    sp = s.series[0]
    rendered = render(world.seed, s, sp, -80.0)
    header = series_header(world.hospital(v.hospital), world.patient(v.patient_key), v, o, sp, rendered)
    instance = instance_dataset(sp, rendered, 3, rendered.frames[3], world.seed)
    full = copy.deepcopy(header)
    for elem in instance:
        full.add(elem)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = full.SOPClassUID, full.SOPInstanceUID
    meta.TransferSyntaxUID, meta.ImplementationClassUID = ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = "WANYING_DEMO_1"
    full.file_meta = meta
    buf = io.BytesIO()
    full.save_as(buf, enforce_file_format=True)
    assert SeriesEncoder(header).encode(instance) == buf.getvalue()
