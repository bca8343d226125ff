"""The demo world, generated from a seed with no I/O: hospitals, patients, visits, orders, studies, reports.

Everything is drawn from one ``random.Random`` seeded with the seed, in a fixed order, so the same seed always
gives the same world. Dates lie in the ~18 months before an anchor date derived from the seed (never from the
clock), in Asia/Shanghai time. Three stories are always present whatever the scale:

* a patient with chest CTs at three hospitals in three cities within weeks (a lung nodule followed up), one of
  whose reports is amended (wrong side corrected);
* an unidentified emergency patient (hospital-scoped key) with a critical head CT, later linked to the ID number;
* a child without an ID number, known only by the hospital's patient ID.
"""
from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import date, datetime, time, timedelta

from pipelines.identity import check_digit
from wanying.demo import catalog, names
from wanying.demo.catalog import ExamItem
from wanying.demo.model import (
    SHANGHAI, Amendment, Hospital, Link, Order, Patient, Report, SeriesPlan, Study, Visit, World, anchor_date,
    dicom_uid, image_plan,
)
from wanying.demo.reports import choose_finding, write_report

HISTORY_DAYS = 540
_MR_BASE_SLICES = {"mr_head_ax": 20, "mr_head_sag": 19, "mr_lspine_sag": 15, "mr_lspine_ax": 10}


# ---------------------------------------------------------------------------------------------- people


def id_number(rng: random.Random, region: str, born: date, sex: str) -> str:
    """An 18-digit resident ID number: region, birth date, sequence (odd for men), GB 11643 check digit."""
    seq = rng.randint(0, 49) * 2 + (1 if sex == "M" else 0)
    first17 = f"{region}{born:%Y%m%d}{rng.randint(0, 9)}{seq:02d}"
    return first17 + check_digit(first17)


def mobile_number(rng: random.Random) -> str:
    return rng.choice(names.MOBILE_PREFIXES) + f"{rng.randint(0, 99_999_999):08d}"


def chinese_name(rng: random.Random, sex: str, birth_year: int) -> tuple[str, str]:
    surnames, weights = zip(*names.SURNAMES)
    surname = rng.choices(surnames, weights)[0]
    if birth_year < 1970 and rng.random() < 0.5:
        return surname, rng.choice(names.GIVEN_OLDER_MALE if sex == "M" else names.GIVEN_OLDER_FEMALE)
    chars = names.GIVEN_MALE if sex == "M" else names.GIVEN_FEMALE
    if rng.random() < 0.35:
        return surname, rng.choice(chars)
    return surname, rng.choice(chars) + rng.choice(chars)


# ---------------------------------------------------------------------------------------------- generator


class _Generator:
    def __init__(self, seed: int, scale: float) -> None:
        self.seed, self.scale = seed, scale
        self.rng = random.Random(f"wanying-demo|{seed}")
        self.anchor = anchor_date(seed)
        self.plan = image_plan(scale)
        self.hospitals = self._hospitals()
        self.patients: list[Patient] = []
        self.visits: list[Visit] = []
        self.links: list[Link] = []
        self.mrns: dict[tuple[str, str], str] = {}
        self.counters: dict[str, int] = {}

    # ------------------------------------------------------------------ hospitals

    def _hospitals(self) -> tuple[Hospital, ...]:
        out, per_city = [], {}
        for city, name, level, alliance in names.HOSPITALS:
            city_code = names.CITIES[city][0]
            per_city[city] = per_city.get(city, 0) + 1
            code = f"AH-{city_code}-{per_city[city]:03d}"
            style, base = self.rng.randrange(4), self.rng.randrange(100, 900, 100)
            codes = {item.key: catalog.local_code(style, i, item.modality, base)
                     for i, item in enumerate(catalog.ITEMS)}
            xr = "CR" if level in ("一级", "二级乙等") else "DX"
            out.append(Hospital(code, name, city, level, alliance, xr, self.rng.randrange(4), codes))
        return tuple(out)

    def _pick_hospital(self, patient: Patient, need_ct_mr: bool) -> Hospital:
        pool = [h for h in self.hospitals if h.has_ct_mr or not need_ct_mr]
        r = self.rng.random()
        home = [h for h in pool if h.city == patient.city]
        if r < 0.7 and home:
            weights = [3.0 if h.level == "三级甲等" else 1.5 if h.level.startswith("二") else 1.0 for h in home]
            return self.rng.choices(home, weights)[0]
        if r < 0.85:
            capital = [h for h in pool if h.city == "合肥" and h.level == "三级甲等"]
            return self.rng.choice(capital)
        return self.rng.choice(pool)

    # ------------------------------------------------------------------ people

    def new_patient(self, *, age: int | None = None, with_id: bool = True, sex: str | None = None) -> Patient:
        rng = self.rng
        sex = sex or rng.choice("MF")
        age = age if age is not None else int(min(88, max(18, rng.gauss(55, 16))))
        born = self.anchor - timedelta(days=age * 365 + rng.randint(30, 330))
        city = rng.choices(list(names.CITIES), [5, 2, 1.5, 1.2, 1, 1.5, 2, 1.5])[0]
        region = rng.choice(names.CITIES[city][1])
        surname, given = chinese_name(rng, sex, born.year)
        pid = id_number(rng, region, born, sex) if with_id else None
        phone = mobile_number(rng)
        patient = Patient(f"P{len(self.patients) + 1:04d}", surname, given, sex, born, pid, phone, city)
        self.patients.append(patient)
        return patient

    def mrn(self, hospital: Hospital, patient: Patient) -> str:
        key = (hospital.code, patient.key)
        if key not in self.mrns:
            taken = set(self.mrns.values())
            while (mrn := f"{self.rng.randint(10_000_000, 99_999_999)}") in taken:
                pass
            self.mrns[key] = mrn
        return self.mrns[key]

    # ------------------------------------------------------------------ time

    def day(self, lo: int, hi: int) -> date:
        return self.anchor - timedelta(days=self.rng.randint(lo, hi))

    def clock(self, day: date, patient_class: str) -> datetime:
        rng = self.rng
        if patient_class == "emergency":
            minutes = rng.randint(0, 24 * 60 - 1)
        elif rng.random() < 0.6:
            minutes = rng.randint(8 * 60, 11 * 60 + 30)
        else:
            minutes = rng.randint(14 * 60, 17 * 60)
        return datetime.combine(day, time(minutes // 60, minutes % 60, rng.randint(0, 59)), SHANGHAI)

    def _next(self, counter: str) -> int:
        self.counters[counter] = self.counters.get(counter, 0) + 1
        return self.counters[counter]

    # ------------------------------------------------------------------ visits, orders, studies

    def visit(
        self,
        patient: Patient,
        hospital: Hospital,
        started_at: datetime,
        patient_class: str,
        items: list[tuple[ExamItem, dict]],
        *,
        identified: bool = True,
        department: str | None = None,
    ) -> Visit:
        rng = self.rng
        prefix = {"outpatient": "MZ", "inpatient": "ZY", "emergency": "JZ", "physical_exam": "TJ"}[patient_class]
        visit_id = f"{prefix}{started_at:%Y%m%d}{self._next(hospital.code + prefix):04d}"
        department = department or rng.choice(names.DEPARTMENTS[items[0][0].region])
        if patient_class == "emergency":
            department = "急诊科"
        doctor = f"D{names.ALL_DEPARTMENTS.index(department) + 1:02d}{rng.randint(1, 3):02d}"
        orders = []
        at = started_at + timedelta(minutes=rng.randint(5, 40))
        for item, story in items:
            orders.append(self.order(patient, hospital, item, at, patient_class, doctor, **story))
            at += timedelta(minutes=rng.randint(1, 4))
        visit = Visit(visit_id, hospital.code, patient.key, self.mrn(hospital, patient), identified, patient_class,
                      department, doctor, started_at, tuple(orders))
        self.visits.append(visit)
        return visit

    def order(
        self,
        patient: Patient,
        hospital: Hospital,
        item: ExamItem,
        at: datetime,
        patient_class: str,
        doctor: str,
        *,
        cancel: bool = False,
        finding: str | None = None,
        side: str | None = None,
        size: int | None = None,
        amend_side: str | None = None,
        report: bool = True,
    ) -> Order:
        rng = self.rng
        modality = hospital.xr_modality if item.modality == "XR" else item.modality
        n = self._next(hospital.code + ":order")
        order_id = f"{hospital.code[3:].replace('-', '')}{at:%y%m%d}{n:05d}"
        accession = f"{modality}{at:%Y%m%d}{n:04d}"
        base = Order(order_id, accession, hospital.code, item.key, hospital.item_codes[item.key],
                     hospital.item_name(item), modality, at, doctor)
        if cancel:
            reasons = ("患者拒绝检查", "重复开单", "患者未到检", "更改检查项目")
            return replace(base, cancelled_at=at + timedelta(minutes=rng.randint(20, 2 * 24 * 60)),
                            cancel_reason=rng.choice(reasons))
        delay = {"emergency": rng.randint(10, 30), "inpatient": rng.randint(12 * 60, 20 * 60)}.get(
            patient_class, rng.randint(30, 150) if item.modality != "MR" else rng.randint(24 * 60, 5 * 24 * 60))
        performed = at + timedelta(minutes=delay)
        age = patient.age_on(performed.date())
        finding = finding or choose_finding(item.key, rng, age=age, emergency=patient_class == "emergency")
        side = side or rng.choice(("左", "右"))
        size = size or rng.randint(5, 14)
        study_uid = dicom_uid(self.seed, "study", hospital.code, accession)
        study = Study(study_uid, accession, performed, hospital.item_name(item),
                      self.series(study_uid, item, modality), finding, side, size)
        if not report:
            return replace(base, study=study)
        read_delay = {"emergency": rng.randint(15, 40), "XR": rng.randint(30, 120), "CT": rng.randint(60, 360)}
        reader = "emergency" if patient_class == "emergency" else item.modality
        signed = performed + timedelta(minutes=read_delay.get(reader, rng.randint(240, 1800)))
        text_rng = random.Random(f"report|{self.seed}|{study_uid}")
        written_side = amend_side or side
        text = write_report(item.key, finding, text_rng, side=written_side, size=size)
        author = f"R{rng.randint(1, 6):02d}"
        amendment = None
        if amend_side:
            corrected = write_report(item.key, finding, random.Random(f"report|{self.seed}|{study_uid}"),
                                     side=side, size=size)
            amendment = Amendment(signed + timedelta(hours=rng.randint(20, 70)), author, corrected,
                                  f"更正病灶侧别：应为{side}侧")
        report_obj = Report(f"RPT{accession}", author, signed, text, amendment)
        return replace(base, study=study, report=report_obj)

    def series(self, study_uid: str, item: ExamItem, modality: str) -> tuple[SeriesPlan, ...]:
        plan, out = self.plan, []
        frame = dicom_uid(self.seed, "for", study_uid)
        for number, t in enumerate(item.series, start=1):
            uid = dicom_uid(self.seed, "series", study_uid, number)
            if t.modality == "CT":
                n = max(4, round(t.coverage_mm / plan.ct_slice_mm))
                sp = SeriesPlan(uid, number, t, "CT", item.body_part, frame, n, plan.ct_matrix, plan.ct_matrix,
                                t.fov_mm / plan.ct_matrix, plan.ct_slice_mm)
            elif t.modality == "MR":
                n = max(5, round(_MR_BASE_SLICES[t.kind] * plan.mr_factor))
                sp = SeriesPlan(uid, number, t, "MR", item.body_part, frame, n, plan.mr_matrix, plan.mr_matrix,
                                t.fov_mm / plan.mr_matrix, round(t.coverage_mm / n, 2))
            else:
                rows = plan.xr_matrix
                cols = rows if t.kind in ("xr_chest_pa", "xr_knee_ap") else int(rows * 0.8) // 2 * 2
                # radiographs have no shared patient frame: each image gets its own frame of reference
                films = 2 if t.kind == "xr_knee_lat" else 1  # lateral films of the right and the left knee
                sp = SeriesPlan(uid, number, t, modality, item.body_part, dicom_uid(self.seed, "for", uid), films,
                                rows, cols, round(t.fov_mm / rows, 4), 0.0)
            out.append(sp)
        return tuple(out)

    # ------------------------------------------------------------------ stories

    def story_repeat(self) -> Patient:
        """Chest CT at three hospitals in three cities within weeks: a nodule followed up; one report amended."""
        rng = self.rng
        patient = self.new_patient(age=rng.randint(52, 68))
        chest = catalog.BY_KEY["CT_CHEST"]
        tertiary = [h for h in self.hospitals if h.level == "三级甲等"]
        first = next(h for h in tertiary if h.city == "合肥")
        others = rng.sample([h for h in tertiary if h.city not in ("合肥",)], 2)
        second = others[0]
        third = next(h for h in self.hospitals if h.city == others[1].city and h.has_ct_mr)
        day = self.day(75, 120)
        size = rng.randint(7, 9)
        for n, hospital in enumerate((first, second, third)):
            started = self.clock(day, "outpatient")
            story = {"finding": "nodule", "side": "右", "size": size + (n == 2), "amend_side": "左" if n == 1 else None}
            items = [(chest, story)]
            if n == 2:  # a chest film ordered as well, then cancelled as redundant
                items.append((catalog.BY_KEY["XR_CHEST"], {"cancel": True}))
            self.visit(patient, hospital, started, "outpatient", items, department="呼吸与危重症医学科")
            day += timedelta(days=rng.randint(10, 20))
        return patient

    def story_unidentified(self) -> Patient:
        """Brought in unconscious: a hospital-scoped key, a critical head CT, the ID number found a day later."""
        rng = self.rng
        patient = self.new_patient(age=rng.randint(62, 80), sex="M")
        hospital = next(h for h in self.hospitals if h.city == "六安" and h.level == "三级甲等")
        head = catalog.BY_KEY["CT_HEAD"]
        started = self.clock(self.day(30, 60), "emergency")
        self.visit(patient, hospital, started, "emergency", [(head, {"finding": "haemorrhage"})], identified=False)
        linked_at = started + timedelta(hours=rng.randint(14, 30))
        self.links.append(Link(hospital.code, patient.key, self.mrn(hospital, patient), linked_at, "id_number"))
        admitted = linked_at + timedelta(minutes=rng.randint(30, 90))
        self.visit(patient, hospital, admitted, "inpatient",
                   [(head, {"finding": "haemorrhage", "size": rng.randint(15, 25)})], department="神经外科")
        return patient

    def story_no_id(self) -> Patient:
        """A small child whose ID number the hospital never recorded."""
        patient = self.new_patient(age=self.rng.randint(2, 5), with_id=False)
        hospital = next(h for h in self.hospitals if h.city == patient.city and h.has_ct_mr)
        started = self.clock(self.day(20, 200), "outpatient")
        self.visit(patient, hospital, started, "outpatient", [(catalog.BY_KEY["XR_CHEST"], {})],
                   identified=False, department="儿科")
        return patient

    def regular(self) -> None:
        rng = self.rng
        patient = self.new_patient(with_id=rng.random() > 0.04)
        n_visits = rng.choices((1, 2, 3), (55, 30, 15))[0]
        days = sorted((rng.randint(7, HISTORY_DAYS) for _ in range(n_visits)), reverse=True)
        previous: ExamItem | None = None
        home_hospital: Hospital | None = None
        for d in days:
            if previous is not None and rng.random() < 0.3:
                item = previous  # the same exam again: what the duplicate check is for
            else:
                item = rng.choices(catalog.ITEMS, [i.weight for i in catalog.ITEMS])[0]
            need = item.modality in catalog.CROSS_SECTIONAL
            if patient.id_number is None:  # known only by one hospital's patient ID: stays there
                home_hospital = home_hospital or self._pick_hospital(patient, True)
                hospital = home_hospital
            else:
                hospital = self._pick_hospital(patient, need)
            patient_class = rng.choices(("outpatient", "inpatient", "emergency", "physical_exam"), (70, 18, 8, 4))[0]
            if patient_class == "physical_exam":
                item = catalog.BY_KEY["XR_CHEST"]
            items = [(item, {"cancel": rng.random() < 0.08})]
            if rng.random() < 0.25:
                extra = [i for i in catalog.ITEMS if i.region == item.region and i.key != item.key
                         and (hospital.has_ct_mr or i.modality == "XR")]
                if extra:
                    items.append((rng.choice(extra), {"cancel": rng.random() < 0.08}))
            day = self.anchor - timedelta(days=d)
            self.visit(patient, hospital, self.clock(day, patient_class), patient_class, items,
                       identified=patient.id_number is not None,
                       department="体检中心" if patient_class == "physical_exam" else None)
            previous = item


def patient_count(scale: float) -> int:
    return max(6, round(40 * scale))


def build_world(seed: int = 20261128, scale: float = 1.0) -> World:
    """The whole demo world for ``seed`` at ``scale`` (patients ~ 40 x scale; image sizes step up with scale)."""
    if not math.isfinite(scale) or scale <= 0:
        raise ValueError("scale must be a positive number")
    gen = _Generator(seed, scale)
    repeat = gen.story_repeat()
    gen.story_unidentified()
    gen.story_no_id()
    while len(gen.patients) < patient_count(scale):
        gen.regular()
    visits = tuple(sorted(gen.visits, key=lambda v: (v.started_at, v.visit_id)))
    return World(seed, scale, gen.anchor, gen.plan, gen.hospitals, tuple(gen.patients), visits, tuple(gen.links),
                 repeat.key)
