// Reading modality values (HU for CT) under a point, and the W/L helpers. Cornerstone 5.14's ProbeTool shows no
// value on stack images after the first, so the viewer reads them itself.
import { cache, utilities as csUtils, StackViewport, BaseVolumeViewport, type Types } from "@cornerstonejs/core";

export type Viewport = Types.IStackViewport | Types.IVolumeViewport;

export interface WindowLevel {
  width: number;
  center: number;
}

export const PRESETS: Record<string, WindowLevel> = {
  肺窗: { width: 1500, center: -600 },
  纵隔窗: { width: 350, center: 40 },
  骨窗: { width: 2000, center: 500 },
  脑窗: { width: 80, center: 40 },
  腹部: { width: 400, center: 50 },
};

export function windowLevelOf(viewport: Viewport): WindowLevel | null {
  const range = viewport.getProperties()?.voiRange;
  if (!range) return null;
  return { width: range.upper - range.lower, center: (range.upper + range.lower) / 2 };
}

export function setWindowLevel(viewport: Viewport, wl: WindowLevel): void {
  viewport.setProperties({ voiRange: { lower: wl.center - wl.width / 2, upper: wl.center + wl.width / 2 } });
  viewport.render();
}

/** The modality value (rescaled: HU for CT) at a world point on what the viewport shows, or null outside. */
export function valueAtWorld(viewport: Viewport, world: Types.Point3): number | null {
  if (viewport instanceof StackViewport) {
    const imageId = viewport.getCurrentImageId();
    const image = imageId ? cache.getImage(imageId) : undefined;
    if (!image) return null;
    const [col, row] = csUtils.worldToImageCoords(imageId, world).map(Math.round);
    if (col < 0 || row < 0 || col >= image.columns || row >= image.rows) return null;
    const stored = image.getPixelData()[row * image.columns + col];
    const scaled = image.preScale?.scaled;
    return scaled ? stored : stored * (image.slope ?? 1) + (image.intercept ?? 0);
  }
  if (viewport instanceof BaseVolumeViewport) {
    const volumeId = viewport.getVolumeId();
    const volume = volumeId ? cache.getVolume(volumeId) : undefined;
    if (!volume) return null;
    const [i, j, k] = csUtils.transformWorldToIndex(volume.imageData!, world);
    const [ni, nj, nk] = volume.dimensions;
    if (i < 0 || j < 0 || k < 0 || i >= ni || j >= nj || k >= nk) return null;
    return Number(volume.voxelManager!.getAtIJK(i, j, k));
  }
  return null;
}
