// window.__viewer: a small read-only view of the viewer's state for browser tests and the load benchmark.

export interface Measurement {
  tool: "length" | "angle" | "probe" | "roi";
  length?: number; // mm
  angle?: number; // degrees
  hu?: number;
  mean?: number;
  stdDev?: number;
  area?: number; // mm²
  max?: number;
  min?: number;
}

export interface ViewerHook {
  mode(): string;
  layout(): string;
  viewportCount(): number;
  sliceIndex(viewport?: number): number;
  sliceCount(viewport?: number): number;
  windowLevel(viewport?: number): { width: number; center: number } | null;
  zoom(viewport?: number): number;
  inverted(viewport?: number): boolean;
  slab(viewport?: number): number;
  lastMeasurement(): Measurement | null;
  /** HU under a page point (CSS pixels), read from the data, not from the screen. */
  huAt(clientX: number, clientY: number): number | null;
  /** Page point (CSS pixels) of an image pixel (column, row) on the slice a stack viewport shows. */
  imageToClient(viewport: number, column: number, row: number): [number, number];
  /** Page point of a world point (mm, patient coordinates). */
  worldToClient(viewport: number, world: [number, number, number]): [number, number];
  cinePlaying(): boolean;
  comparisonOffsetMm(): number | null;
  /** Frames loaded from series bundles and by WADO-RS frame requests so far. */
  frameSources(): { bundle: number; wadors: number };
  /** The modality values (HU for CT) of every pixel of the image a stack viewport shows, row by row. */
  imageValues(viewport?: number): number[] | null;
  timings(): { firstImageMs: number | null; mprReadyMs: number | null; vrReadyMs: number | null };
  /** Bytes this page holds: bundle frames not yet released, and Cornerstone's image and volume cache. */
  memory(): { bundleBytes: number; cacheBytes: number };
}

declare global {
  interface Window {
    __viewer?: ViewerHook;
  }
}

export function installHook(hook: ViewerHook): void {
  window.__viewer = hook;
}
