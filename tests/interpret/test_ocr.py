"""OCR of rendered-then-photographed reports: character accuracy and line order on tilted pages."""
from __future__ import annotations

import re
import time
import unicodedata
from pathlib import Path

import pytest

from interpret import ocr
from interpret.evaluation import load_reports
from tests.interpret.photos import photograph, render

REPORTS = Path(__file__).parent / "data" / "reports.jsonl"
# (report id, tilt in degrees, seed, font px, blur radius, noise sigma, JPEG quality): tilts up to 8 degrees both ways.
CASES = [
    ("r001", -8.0, 1, 30, 1.2, 8.0, 60),
    ("r025", 5.5, 2, 26, 1.5, 10.0, 50),
    ("r044", -3.0, 3, 24, 1.0, 12.0, 45),
    ("r061", 7.8, 4, 28, 1.8, 6.0, 55),
]
# A header in columns, as on real forms: rapidocr gives one box per column, which a tilt interleaves.
HEADER = "检查号：CT2026112801          性别：男          年龄：63岁\n科室：呼吸内科门诊          床号：无          检查日期：2026-11-28\n"


def _plain(text: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def edit_distance(a: str, b: str) -> int:
    previous = list(range(len(b) + 1))
    for i, char_a in enumerate(a, 1):
        current = [i]
        for j, char_b in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (char_a != char_b)))
        previous = current
    return previous[-1]


def test_edit_distance():
    assert edit_distance("磨玻璃结节", "磨玻结节") == 1 and edit_distance("", "ab") == 2


def test_tilted_boxes_are_read_line_by_line():
    # Two long lines tilted up by 8 degrees: the second line's left end is lower than the first line's right
    # end is high, so sorting by top y alone would interleave the short boxes.
    import math

    slope = math.tan(math.radians(-8))

    def box(text, x, y, w=100, h=30):
        return ocr.Box(text, 0.99, ((x, y + slope * x), (x + w, y + slope * (x + w)),
                                    (x + w, y + h + slope * (x + w)), (x, y + h + slope * x)))

    boxes = [box("甲", 0, 100), box("乙", 600, 100), box("丙", 0, 145), box("丁", 600, 145), box("戊", 300, 100)]
    lines = ocr.order_lines(boxes)
    assert [[b.text for b in line] for line in lines] == [["甲", "戊", "乙"], ["丙", "丁"]]
    assert ocr.join_line(lines[0]) == "甲 戊 乙"


def test_bad_image_is_rejected_with_a_reason():
    with pytest.raises(ValueError, match="not a readable image"):
        ocr.read_report(b"this is not an image")
    with pytest.raises(ValueError, match="empty"):
        ocr.read_report(b"")


@pytest.mark.slow
def test_ocr_character_accuracy_on_photographed_reports():
    reports = {r["id"]: r for r in load_reports(REPORTS)}
    errors = naive_errors = chars = 0
    started = time.monotonic()
    for report_id, angle, seed, size, blur, noise, quality in CASES:
        page, lines = render(HEADER + reports[report_id]["text"], size=size, width=size * 33)
        photo = photograph(page, angle, seed, blur=blur, noise=noise, quality=quality)
        boxes = ocr.read_boxes(photo)
        truth = _plain("".join(lines))
        ours = _plain("".join(ocr.join_line(line) for line in ocr.order_lines(boxes)))
        naive = _plain("".join(b.text for b in boxes))  # rapidocr's own box order
        errors += edit_distance(truth, ours)
        naive_errors += edit_distance(truth, naive)
        chars += len(truth)
    one_minus_cer = 1 - errors / chars
    print(f"\ninterpret_ocr one_minus_cer={one_minus_cer:.4f} n={len(CASES)}")
    print(f"interpret_ocr_detail naive_order_one_minus_cer={1 - naive_errors / chars:.4f} chars={chars} "
          f"seconds={time.monotonic() - started:.1f}")
    assert one_minus_cer >= 0.97
