"""OCR of a photographed paper report with rapidocr (its models ship in the wheel, so this works offline).

rapidocr finds text boxes; on a tilted photo its own top-to-bottom order interleaves lines. Here boxes are put
into lines along the page's own baseline: estimate the skew from the boxes' top edges, rotate the box centres
back by it, cluster by the rotated height, then read each line left to right.
"""
from __future__ import annotations

import io
import itertools
import math
import statistics
import threading
from dataclasses import dataclass
from functools import lru_cache

MAX_PIXELS = 40_000_000


@dataclass(frozen=True)
class Box:
    text: str
    score: float
    points: tuple[tuple[float, float], ...]  # top-left, top-right, bottom-right, bottom-left

    @property
    def width(self) -> float:
        (x0, y0), (x1, y1) = self.points[0], self.points[1]
        return math.hypot(x1 - x0, y1 - y0)

    @property
    def height(self) -> float:
        (x0, y0), (x3, y3) = self.points[0], self.points[3]
        return math.hypot(x3 - x0, y3 - y0)

    @property
    def angle(self) -> float:
        (x0, y0), (x1, y1) = self.points[0], self.points[1]
        return math.atan2(y1 - y0, x1 - x0)

    @property
    def centre(self) -> tuple[float, float]:
        return (sum(p[0] for p in self.points) / 4, sum(p[1] for p in self.points) / 4)


def skew(boxes: list[Box]) -> float:
    """The page's text angle in radians: median of the box angles, wide boxes counting more."""
    angles = [b.angle for b in boxes for _ in range(max(1, round(b.width / max(b.height, 1.0))))]
    return statistics.median(angles) if angles else 0.0


def order_lines(boxes: list[Box]) -> list[list[Box]]:
    """Group boxes into text lines in reading order, correcting for the page's rotation."""
    if not boxes:
        return []
    theta = skew(boxes)
    cos, sin = math.cos(-theta), math.sin(-theta)

    def rotated(box: Box) -> tuple[float, float]:
        x, y = box.centre
        return (x * cos - y * sin, x * sin + y * cos)

    placed = sorted(((rotated(b), b) for b in boxes), key=lambda item: item[0][1])
    tolerance = 0.5 * statistics.median(b.height for b in boxes)
    lines: list[list[tuple[tuple[float, float], Box]]] = []
    for item in placed:
        if lines:
            line = lines[-1]
            mean_y = sum(p[1] for p, _ in line) / len(line)
            if abs(item[0][1] - mean_y) <= tolerance:
                line.append(item)
                continue
        lines.append([item])
    return [[b for _, b in sorted(line, key=lambda item: item[0][0])] for line in lines]


def join_line(line: list[Box]) -> str:
    """Boxes of one line, with a space where the gap between them is wider than a character."""
    parts = [line[0].text]
    for left, right in itertools.pairwise(line):
        gap = math.dist(left.points[1], right.points[0])
        parts.append((" " if gap > max(left.height, right.height) else "") + right.text)
    return "".join(parts)


@lru_cache(maxsize=1)
def _engine():
    from rapidocr import RapidOCR

    return RapidOCR(params={"Global.log_level": "error"})


_lock = threading.Lock()  # one inference at a time: the engine is shared and the machine small


def _decode(data: bytes):
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise ValueError("empty file")
    try:
        image = Image.open(io.BytesIO(data))
        if image.width * image.height > MAX_PIXELS:
            raise ValueError(f"image too large ({image.width}x{image.height})")
        image = ImageOps.exif_transpose(image).convert("RGB")
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(f"not a readable image ({error.__class__.__name__})") from None
    return image


def read_boxes(data: bytes) -> list[Box]:
    image = _decode(data)
    with _lock:
        result = _engine()(image)
    if result.boxes is None:
        return []
    return [
        Box(text=text, score=float(score), points=tuple((float(x), float(y)) for x, y in points))
        for points, text, score in zip(result.boxes, result.txts, result.scores)
    ]


def read_report(data: bytes) -> str:
    """The report's text, one line per printed line, top to bottom. Raises ValueError on a bad image."""
    return "\n".join(join_line(line) for line in order_lines(read_boxes(data)))
