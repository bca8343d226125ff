"""Render report text as a page and make it look photographed: perspective, tilt, uneven light, blur, noise, JPEG."""
from __future__ import annotations

import io
import subprocess
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont


@lru_cache(maxsize=1)
def cjk_font_path() -> str:
    """A Simplified Chinese font known to fontconfig (fonts-noto-cjk is in infra/setup.sh)."""
    out = subprocess.run(["fc-list", ":lang=zh-cn", "file"], capture_output=True, text=True, check=True).stdout
    paths = sorted(line.split(":")[0].strip() for line in out.splitlines() if line.strip())
    sans = [p for p in paths if "Sans" in p and "Bold" not in p]
    if not (sans or paths):
        raise RuntimeError("no CJK font installed: run infra/setup.sh (fonts-noto-cjk)")
    return (sans or paths)[0]


@lru_cache(maxsize=4)
def cjk_font(size: int) -> ImageFont.FreeTypeFont:
    """The Simplified Chinese face of the collection (a .ttc starts with the Japanese face, whose glyphs differ)."""
    path = cjk_font_path()
    for index in range(8):
        try:
            font = ImageFont.truetype(path, size, index=index)
        except OSError:
            break
        if font.getname()[0].endswith(" SC"):
            return font
    return ImageFont.truetype(path, size)


def wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines = []
    for paragraph in text.splitlines():
        current = ""
        for char in paragraph:
            if current and font.getlength(current + char) > width:
                lines.append(current)
                current = ""
            current += char
        if current:
            lines.append(current)
    return lines


def render(text: str, size: int = 30, width: int = 1000) -> tuple[Image.Image, list[str]]:
    font = cjk_font(size)
    lines = wrap(text, font, width)
    step = int(size * 1.6)
    page = Image.new("L", (width + 120, step * len(lines) + 120), 246)
    draw = ImageDraw.Draw(page)
    for index, line in enumerate(lines):
        draw.text((60, 60 + index * step), line, fill=28, font=font)
    return page, lines


def _perspective_coefficients(source, target):
    """Coefficients for Image.transform(PERSPECTIVE) mapping output points `target` back to input `source`."""
    rows, rhs = [], []
    for (x, y), (u, v) in zip(target, source):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
        rhs.extend([u, v])
    return np.linalg.solve(np.array(rows, float), np.array(rhs, float)).tolist()


def photograph(page: Image.Image, angle: float, seed: int, blur: float = 1.1, noise: float = 8.0,
               quality: int = 60) -> bytes:
    rng = np.random.default_rng(seed)
    margin = 80
    canvas = Image.new("L", (page.width + 2 * margin, page.height + 2 * margin), 105)
    canvas.paste(page, (margin, margin))
    w, h = canvas.size
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    jitter = 0.035 * min(w, h)
    moved = [(x + rng.uniform(-jitter, jitter), y + rng.uniform(-jitter, jitter)) for x, y in corners]
    canvas = canvas.transform((w, h), Image.PERSPECTIVE, _perspective_coefficients(corners, moved),
                              Image.BICUBIC, fillcolor=105)
    canvas = canvas.rotate(angle, resample=Image.BICUBIC, expand=True, fillcolor=105)
    pixels = np.asarray(canvas, dtype=np.float32)
    light = np.linspace(0.82, 1.05, pixels.shape[1])[None, :] * np.linspace(1.03, 0.9, pixels.shape[0])[:, None]
    pixels = pixels * light
    canvas = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(blur))
    pixels = np.asarray(canvas, dtype=np.float32) + rng.normal(0, noise, (canvas.height, canvas.width))
    photo = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).convert("RGB")
    buffer = io.BytesIO()
    photo.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()
