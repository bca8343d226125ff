"""Image measurements shared by the radiograph, CT and MR analyses (NumPy/SciPy, no modality knowledge)."""
from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

_IMMERKAER = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], np.float32)


def block_mean(img: np.ndarray, factor: int) -> np.ndarray:
    """Downsample a 2-D array by an integer factor (mean of each block): fast and noise-reducing."""
    if factor <= 1:
        return img.astype(np.float32, copy=False)
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    return img[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3), dtype=np.float32)


def factor_for(shape: tuple[int, ...], target: int) -> int:
    return max(1, int(round(max(shape[-2:]) / target)))


def noise_sigma(img: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Robust noise SD (Immerkaer's Laplacian-difference operator, median absolute deviation)."""
    r = ndi.convolve(img.astype(np.float32), _IMMERKAER, mode="reflect")
    values = r[mask] if mask is not None and mask.any() else r.ravel()
    if values.size == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - np.median(values))) / 6.0)


def edge_sharpness(img: np.ndarray, mask: np.ndarray | None = None, top: float = 0.005) -> float:
    """Ratio of peak gradient at scale 1 px to scale 2 px on the strongest fine-scale edges.

    A step edge blurred by s px gives sqrt(s^2+4)/sqrt(s^2+1): 2 when sharp, towards 1 when blurred. It does
    not depend on contrast, and noise hardly moves it because it is read on the strongest edges only.
    """
    img = img.astype(np.float32)
    g1 = ndi.gaussian_gradient_magnitude(img, 1.0)
    g2 = ndi.gaussian_gradient_magnitude(img, 2.0)
    sel = g1 if mask is None else np.where(mask, g1, 0)
    cut = np.quantile(sel, 1 - top)
    edges = (sel >= cut) & (sel > 0)
    if edges.sum() < 10:
        return 1.0
    return float(np.median(g1[edges] / np.maximum(g2[edges], 1e-6)))


def ghost_index(img: np.ndarray, max_lag_fraction: float = 0.05, mask: np.ndarray | None = None,
                split: bool = False) -> tuple[float, tuple[int, int]]:
    """Strength and lag of a displaced copy (double edges, motion ghost).

    The autocorrelation of the band-passed image has a sharp secondary peak at the ghost's displacement d.
    Long straight edges give ridges and repeating anatomy gives humps; both persist at 0.6 d and 1.4 d along
    the same direction while a ghost does not, so the peak is read as its excess over those two points.
    Lags start past the central lobe and stop at ``max_lag_fraction`` of the image size. ``mask`` keeps only the
    patient (a table outside it adds nothing).

    ``split`` reads the edges in four orientation bins. When long near-straight edges (a wide trunk's outline, an
    air-fluid level) carry most of the energy, their ridge buries a ghost displaced along them; in the bins of
    the other orientations the ghost stands out. A ghost moves every edge by the same d, so it shows at the same
    lag in every bin it shows in, while parallel layers (fat, muscle, a rib ring) show in each bin at a lag along
    that bin's normal, i.e. as a ring of lags: the strongest bin at each lag, less the median of its ring.
    """
    img = img.astype(np.float32)
    band = ndi.gaussian_filter(img, 1.0) - ndi.gaussian_filter(img, 2.0)
    if mask is not None:
        band *= mask
    if split:
        gy = ndi.gaussian_filter(img, 1.5, order=(1, 0))
        gx = ndi.gaussian_filter(img, 1.5, order=(0, 1))
        phi = np.arctan2(gy, gx)
        bands = [band * np.cos(phi - t) ** 4 for t in np.radians([0, 45, 90, 135])]
    else:
        bands = [band]
    acs = [_autocorrelation(b) for b in bands]
    if any(ac is None for ac in acs):
        return 0.0, (0, 0)
    lobes = [_central_lobe(ac) for ac in acs]
    lobe = max(lobes)
    shape = acs[0].shape
    max_lag = int(max(lobe * 2 + 2, max_lag_fraction * max(shape)))
    w = int(1.4 * max_lag) + 2  # the window of lags that matter (cheap even for large images)
    excess = np.max(np.stack([_excess(ac, w) for ac in acs]), axis=0)
    cy, cx = shape[0] // 2, shape[1] // 2
    sy, sx = cy - max(0, cy - w), cx - max(0, cx - w)
    dy, dx = np.mgrid[: excess.shape[0], : excess.shape[1]]
    rr = np.hypot(dy - sy, dx - sx)
    if split:  # parallel layers repeat at the same distance in every direction, a ghost at one lag only
        ri = np.rint(rr).astype(int)
        ring = np.array([np.median(excess[ri == k]) for k in range(int(ri.max()) + 1)])
        excess = excess - ring[ri]
    excess = np.where((rr < max(3.0, 1.5 * lobe)) | (rr > max_lag), -np.inf, excess)
    iy, ix = np.unravel_index(int(np.argmax(excess)), excess.shape)
    return float(max(excess[iy, ix], 0.0)), (int(iy - sy), int(ix - sx))


def _autocorrelation(band: np.ndarray) -> np.ndarray | None:
    band = band - band.mean()
    ac = np.fft.fftshift(np.fft.irfft2(np.abs(np.fft.rfft2(band)) ** 2, s=band.shape))
    zero = ac[ac.shape[0] // 2, ac.shape[1] // 2]
    return ac / zero if zero > 0 else None


def _central_lobe(ac: np.ndarray) -> int:
    cy, cx = ac.shape[0] // 2, ac.shape[1] // 2
    yy, xx = np.ogrid[: ac.shape[0], : ac.shape[1]]
    ri = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2).astype(int)
    radial = np.bincount(ri.ravel(), ac.ravel()) / np.maximum(np.bincount(ri.ravel()), 1)
    below = np.nonzero(radial < 0.1)[0]
    return int(below[0]) if below.size else 2


def _excess(ac: np.ndarray, w: int) -> np.ndarray:
    """Autocorrelation (zero lag = 1) minus the larger of its values at 0.6 and 1.4 times each lag."""
    cy, cx = ac.shape[0] // 2, ac.shape[1] // 2
    sub = ac[max(0, cy - w): cy + w + 1, max(0, cx - w): cx + w + 1]
    sy, sx = cy - max(0, cy - w), cx - max(0, cx - w)
    dy, dx = np.mgrid[: sub.shape[0], : sub.shape[1]]
    dy, dx = dy - sy, dx - sx
    near = ndi.map_coordinates(sub, [sy + 0.6 * dy, sx + 0.6 * dx], order=1)
    far = ndi.map_coordinates(sub, [sy + 1.4 * dy, sx + 1.4 * dx], order=1, mode="nearest")
    return sub - np.maximum(near, far)


def principal_angle(mask: np.ndarray) -> float:
    """Orientation (degrees, -90..90, 0 = along rows axis i.e. vertical) of the main axis of a mask."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 10:
        return 0.0
    ys, xs = ys - ys.mean(), xs - xs.mean()
    cov = np.cov(np.vstack([ys, xs]))
    evals, evecs = np.linalg.eigh(cov)
    vy, vx = evecs[:, int(np.argmax(evals))]
    angle = float(np.degrees(np.arctan2(vx, vy)))
    if angle > 90:
        angle -= 180
    if angle < -90:
        angle += 180
    return angle


def largest_components(mask: np.ndarray, n: int = 1, min_fraction: float = 0.0) -> np.ndarray:
    labels, count = ndi.label(mask)
    if count == 0:
        return mask.astype(bool)
    sizes = np.bincount(labels.ravel())[1:]
    order = np.argsort(sizes)[::-1][:n]
    keep = [i + 1 for i in order if sizes[i] >= min_fraction * mask.size]
    if len(keep) == 1:
        return labels == keep[0]
    lut = np.zeros(count + 1, bool)
    lut[keep] = True
    return lut[labels]


def bbox(mask: np.ndarray) -> list[int] | None:
    """[row0, col0, row1, col1] (inclusive-exclusive) of a 2-D mask, or None."""
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    r = np.nonzero(rows)[0]
    c = np.nonzero(cols)[0]
    return [int(r[0]), int(c[0]), int(r[-1]) + 1, int(c[-1]) + 1]


PIXEL_KEYS = ("bbox", "rows", "pixel", "from_px", "to_px")


def in_original(where: dict | None, factor: int) -> dict | None:
    """A location read on a work copy downsampled by ``factor``, in the original image's pixels (the dashboard
    draws it on the full image). Keys that are not pixel positions (slice, edge, degrees) are left alone."""
    if not where or factor == 1:
        return where
    out = dict(where)
    for key in PIXEL_KEYS:
        value = out.get(key)
        if isinstance(value, list):
            out[key] = [int(v) * factor for v in value]
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out[key] = int(value) * factor
    return out


def otsu(values: np.ndarray) -> float:
    from skimage.filters import threshold_otsu

    values = values[np.isfinite(values)]
    if values.size == 0:
        return 0.0
    return float(threshold_otsu(values)) if np.ptp(values) > 0 else float(values.mean())
