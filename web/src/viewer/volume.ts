// A series bundle's raw frames straight into one volume array (no Cornerstone here: it runs in bundleWorker.ts).
// Cornerstone's own volume loader decodes every frame through its image loader and workers, copying each twice;
// a raw bundle already holds the stored values of every slice in slice order, so the volume is those values times
// the slope plus the intercept (modality values: HU for CT), written as the frames stream in.

type Json = Record<string, { Value?: unknown[] }>;

export interface BundleHeader {
  format: string;
  encoding: string;
  transfer_syntax: string;
  data_length: number;
  metadata: Json[];
  instances: { sop_uid: string; rows: number; columns: number; samples_per_pixel: number; bits_allocated: number;
    pixel_representation: number; frames: [number, number][] }[];
}

/** What a volume needs, from the header alone; the same on the worker and on the page. */
export interface VolumePlan {
  dimensions: [number, number, number];
  spacing: [number, number, number]; // mm: column step, row step, slice step
  origin: [number, number, number]; // the first slice's position
  direction: number[]; // row cosines, column cosines, slice normal
  keys: string[]; // "sop/1" of each slice, in slice order
  slopes: number[];
  intercepts: number[];
  stored: "Int16Array" | "Uint16Array" | "Uint8Array";
  window: { center: number; width: number } | null;
  metadata: Json[]; // DICOM JSON of each slice, in slice order
}

const num = (item: Json, tag: string, i = 0): number | undefined => {
  const v = item[tag]?.Value?.[i];
  return v === undefined || v === null || v === "" ? undefined : Number(v);
};
const nums = (item: Json, tag: string): number[] => (item[tag]?.Value ?? []).map(Number);

/** The plan, or null when this series is not one plain volume (then Cornerstone's loader takes it). */
export function volumePlan(header: BundleHeader): VolumePlan | null {
  const { instances, metadata } = header;
  if (header.encoding !== "raw" || instances.length < 2 || metadata.length !== instances.length) return null;
  const first = instances[0];
  const same = instances.every((i) => i.rows === first.rows && i.columns === first.columns &&
    i.samples_per_pixel === 1 && i.bits_allocated === first.bits_allocated &&
    i.pixel_representation === first.pixel_representation && i.frames.length === 1);
  if (!same || ![8, 16].includes(first.bits_allocated)) return null;
  const iop = nums(metadata[0], "00200037");
  const spacingRC = nums(metadata[0], "00280030");
  if (iop.length !== 6 || spacingRC.length !== 2) return null;
  const row = iop.slice(0, 3);
  const col = iop.slice(3, 6);
  const normal = [row[1] * col[2] - row[2] * col[1], row[2] * col[0] - row[0] * col[2], row[0] * col[1] - row[1] * col[0]];
  const positions: number[] = [];
  for (const item of metadata) {
    const o = nums(item, "00200037");
    const p = nums(item, "00200032");
    if (p.length !== 3 || o.some((v, i) => Math.abs(v - iop[i]) > 1e-4)) return null;
    positions.push(p[0] * normal[0] + p[1] * normal[1] + p[2] * normal[2]);
  }
  const step = (positions[positions.length - 1] - positions[0]) / (positions.length - 1);
  if (!(step > 1e-6) || positions.some((p, i) => i > 0 && Math.abs(p - positions[i - 1] - step) > 0.01 * step)) {
    return null; // not evenly spaced in ascending order
  }
  const center = num(metadata[0], "00281050");
  const width = num(metadata[0], "00281051");
  return {
    dimensions: [first.columns, first.rows, instances.length],
    spacing: [spacingRC[1], spacingRC[0], step],
    origin: nums(metadata[0], "00200032") as [number, number, number],
    direction: [...row, ...col, ...normal],
    keys: instances.map((i) => `${i.sop_uid}/1`),
    slopes: metadata.map((m) => num(m, "00281053") ?? 1),
    intercepts: metadata.map((m) => num(m, "00281052") ?? 0),
    stored: first.bits_allocated === 8 ? "Uint8Array" : first.pixel_representation ? "Int16Array" : "Uint16Array",
    window: center !== undefined && width !== undefined && width > 0 ? { center, width } : null,
    metadata,
  };
}

/** Stored values of one raw frame (little endian, as the bundle holds them). */
export function storedValues(plan: Pick<VolumePlan, "stored">, bytes: Uint8Array): Int16Array | Uint16Array | Uint8Array {
  if (plan.stored === "Uint8Array") return bytes;
  const aligned = bytes.byteOffset % 2 === 0 ? bytes : bytes.slice();
  const Type = plan.stored === "Int16Array" ? Int16Array : Uint16Array;
  return new Type(aligned.buffer, aligned.byteOffset, aligned.byteLength / 2);
}

/** Fills the volume slice by slice, in 32-bit floats when ``floats`` (Cornerstone 5.14 uploads every volume as a
 * float texture, converting 16-bit slices one by one on the main thread at the first render: building floats here,
 * off that thread, saves that step at twice the memory) or else in 16-bit integers while the values fit; a value
 * that does not fit switches the whole volume to floats, re-read from the raw frames kept for that. */
export class VolumeBuilder {
  private ints: Int16Array | null;
  private floats: Float32Array | null = null;
  private readonly raw = new Map<number, Uint8Array>();
  private filled = 0;
  readonly sliceLength: number;

  constructor(readonly plan: VolumePlan, floats = false) {
    const [x, y, z] = plan.dimensions;
    this.sliceLength = x * y;
    const integral = plan.slopes.every((s, i) => Number.isInteger(s) && Number.isInteger(plan.intercepts[i]));
    this.ints = integral && !floats ? new Int16Array(x * y * z) : null;
    if (!this.ints) this.floats = new Float32Array(x * y * z);
  }

  get complete(): boolean {
    return this.filled === this.plan.dimensions[2];
  }

  add(slice: number, bytes: Uint8Array): void {
    const values = storedValues(this.plan, bytes);
    if (values.length !== this.sliceLength) throw new Error(`volume: slice ${slice} has ${values.length} values`);
    const slope = this.plan.slopes[slice];
    const intercept = this.plan.intercepts[slice];
    const start = slice * this.sliceLength;
    this.filled += 1;
    if (this.ints) {
      this.raw.set(slice, bytes);
      const out = this.ints;
      let low = 0;
      let high = 0;
      for (let i = 0; i < values.length; i++) {
        const v = values[i] * slope + intercept;
        out[start + i] = v;
        if (v < low) low = v;
        else if (v > high) high = v;
      }
      if (low >= -32768 && high <= 32767) return;
      this.toFloats();
      return;
    }
    const out = this.floats!;
    for (let i = 0; i < values.length; i++) out[start + i] = values[i] * slope + intercept;
  }

  private toFloats(): void {
    this.floats = new Float32Array(this.ints!.length);
    this.ints = null;
    for (const [slice, bytes] of this.raw) {
      const values = storedValues(this.plan, bytes);
      const [slope, intercept, start] = [this.plan.slopes[slice], this.plan.intercepts[slice], slice * this.sliceLength];
      for (let i = 0; i < values.length; i++) this.floats[start + i] = values[i] * slope + intercept;
    }
    this.raw.clear();
  }

  /** The volume's values (x fastest, then y, then slices). */
  result(): Int16Array | Float32Array {
    this.raw.clear();
    return (this.ints ?? this.floats)!;
  }
}
