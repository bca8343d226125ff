"""Rendered images and thumbnails (PS3.18 8.3.5, 9.5): modality LUT, a window, then JPEG or PNG at a viewport."""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np
from PIL import Image

# (center, width) in output units of the modality LUT (HU for CT)
PRESETS = {
    "soft_tissue": (40, 400), "lung": (-600, 1500), "bone": (400, 1800), "brain": (40, 80),
    "abdomen": (60, 400), "mediastinum": (50, 350), "liver": (60, 160), "stroke": (40, 40),
}
MEDIA = {"image/jpeg": "JPEG", "image/png": "PNG"}


class RenderError(ValueError):
    """Bad rendering parameters (400)."""


@dataclass(frozen=True)
class RenderOptions:
    media_type: str = "image/jpeg"
    window: tuple[float, float, str] | None = None  # center, width, function (linear | sigmoid)
    viewport: tuple[int, int] | None = None
    quality: int = 90


def parse_options(accept: str | None, window: str | None, preset: str | None, viewport: str | None,
                  quality: str | None, *, thumbnail: bool = False) -> RenderOptions:
    media = "image/jpeg"
    for item in (accept or "").split(","):
        m = item.split(";")[0].strip().lower()
        if m in MEDIA:
            media = m
            break
        if m and m not in ("*/*", "image/*"):
            continue
    win = None
    if preset:
        if preset not in PRESETS:
            raise RenderError(f"unknown window preset {preset!r}; use one of {', '.join(sorted(PRESETS))}")
        win = (*PRESETS[preset], "linear")
    if window:
        parts = window.split(",")
        try:
            center, width = float(parts[0]), float(parts[1])
        except (IndexError, ValueError):
            raise RenderError("window must be center,width[,linear|sigmoid]") from None
        function = parts[2].strip().lower() if len(parts) > 2 else "linear"
        if width <= 0 or function not in ("linear", "sigmoid"):
            raise RenderError("window width must be positive and the function linear or sigmoid")
        win = (center, width, function)
    vp = (128, 128) if thumbnail else None
    if viewport:
        try:
            w, h = (int(float(v)) for v in viewport.split(",")[:2])
        except ValueError:
            raise RenderError("viewport must be width,height") from None
        if not (1 <= w <= 4096 and 1 <= h <= 4096):
            raise RenderError("viewport sides must be between 1 and 4096 pixels")
        vp = (w, h)
    try:
        q = int(quality) if quality else 90
    except ValueError:
        raise RenderError("quality must be an integer 1-100") from None
    return RenderOptions(media, win, vp, max(1, min(q, 100)))


def _stored_window(ds) -> tuple[float, float, str] | None:
    def first(value):
        return float(value[0]) if hasattr(value, "__len__") and not isinstance(value, str) else float(value)
    try:
        if "WindowCenter" in ds and "WindowWidth" in ds:
            return first(ds.WindowCenter), max(first(ds.WindowWidth), 1.0), "linear"
    except (TypeError, ValueError):
        return None
    return None


def render(ds, frame: np.ndarray, options: RenderOptions) -> bytes:
    """One frame as JPEG or PNG. Colour frames are sent as they are (no window)."""
    if frame.ndim == 3:
        img = Image.fromarray(frame.astype(np.uint8))
    else:
        values = frame.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1) + float(
            ds.get("RescaleIntercept", 0) or 0)
        center, width, function = options.window or _stored_window(ds) or (
            float(values.min() + values.max()) / 2, float(max(values.max() - values.min(), 1)), "linear")
        if function == "sigmoid":
            out = 255.0 / (1 + np.exp(-4 * (values - center) / width))
        else:  # PS3.3 C.11.2.1.2.1
            out = ((values - (center - 0.5)) / (width - 1) + 0.5) * 255.0
        pixels = np.clip(out, 0, 255).astype(np.uint8)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            pixels = 255 - pixels
        img = Image.fromarray(pixels)
    if options.viewport:
        img.thumbnail(options.viewport, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    if options.media_type == "image/png":
        img.save(buf, "PNG")
    else:
        img.save(buf, "JPEG", quality=options.quality)
    return buf.getvalue()
