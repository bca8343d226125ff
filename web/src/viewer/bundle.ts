// The fast path: a whole series in one streamed request (our server's ``.../series/{se}/bundle``, format in
// pipelines/dicomweb/bundle.py: "WYBUNDL1" | u32 header length | JSON header | frame data). In frames mode (stack)
// frames are handed to the image loader as their bytes arrive; in volume mode (MPR) a worker builds the volume's
// values from the raw frames directly (volume.ts). Any other DICOMweb server answers 404 and the viewer uses WADO-RS.
// No Cornerstone import here: main.ts starts the first series' stream while Cornerstone is still loading.
import { token } from "../common/api";
import { readBundle, type BundleMessage } from "./bundleReader";
import { VolumeBuilder, volumePlan, type BundleHeader, type VolumePlan } from "./volume";

export interface BundleFrame {
  bytes: Uint8Array;
  transferSyntax: string;
}

export interface BundleVolume {
  plan: VolumePlan;
  scalars: Int16Array | Float32Array;
}

export type StreamMode = "frames" | "volume";

/** ``wadors:<series URL>/instances/<sop>/frames/<n>``, the image ids the viewer's DICOMweb client makes. */
const FRAME_ID = /^wadors:(.+\/studies\/[^/]+\/series\/[^/]+)\/instances\/([^/]+)\/frames\/(\d+)$/;

const enabled = new URLSearchParams(location.search).get("bundle") !== "0"; // ?bundle=0: WADO-RS frames only
const bundles = new Map<string, SeriesBundle>();
// Volumes as 32-bit floats (what Cornerstone uploads: no conversion at the first render) unless the device has
// little memory (phones: navigator.deviceMemory below 4 GB), then 16-bit integers at half the size.
const FLOAT_VOLUMES = ((navigator as { deviceMemory?: number }).deviceMemory ?? 4) >= 4;

class SeriesBundle {
  private spans = new Map<string, [number, number]>(); // "sop/frame" (1-based) -> [offset, length]
  private frames = new Map<string, Uint8Array>(); // arrived (from the stream, or the first one by Range)
  private waiting = new Map<string, ((frame: BundleFrame | null) => void)[]>();
  private transferSyntax = "";
  private header: BundleHeader | undefined;
  private over = false; // finished or failed: frames not received by then come from WADO-RS
  private complete = false; // every frame arrived
  private first: string | undefined; // the first frame asked for (the image shown first), fetched ahead by Range
  private dataOffset = -1;
  private etag = "";
  private heldBytes = 0;
  private readonly abort = new AbortController();
  private worker: Worker | undefined;
  private headers = new Headers({ Accept: "application/vnd.wanying.series-bundle" });
  private gotMetadata: (metadata: Record<string, unknown>[] | null) => void = () => undefined;
  private gotVolume: (volume: BundleVolume | null) => void = () => undefined;
  private ended: () => void = () => undefined;
  /** The series' DICOM JSON metadata from the bundle's header (null without a bundle). */
  readonly metadata = new Promise<Record<string, unknown>[] | null>((resolve) => (this.gotMetadata = resolve));
  private readonly built = new Promise<BundleVolume | null>((resolve) => (this.gotVolume = resolve));
  private readonly finished = new Promise<void>((resolve) => (this.ended = resolve));

  constructor(private readonly seriesUrl: string, readonly mode: StreamMode) {
    const bearer = token();
    if (bearer) this.headers.set("Authorization", `Bearer ${bearer}`);
    const url = `${seriesUrl}/bundle?encoding=raw`;
    const headers = [...this.headers.entries()];
    if (mode === "frames") {
      void readBundle(url, headers, {
        header: (header, dataOffset, etag) => this.receive({ type: "header", header, dataOffset, etag }),
        frame: (key, bytes) => this.receive({ type: "frame", key, bytes: bytes.slice() }),
      }, this.abort.signal).then(
        () => this.receive({ type: "end" }),
        (error) => this.receive({ type: "error", message: String(error) }),
      );
      return;
    }
    const worker = new Worker(new URL("./bundleWorker.ts", import.meta.url), { type: "module" });
    this.worker = worker;
    worker.onmessage = (event: MessageEvent<BundleMessage>) => {
      if (event.data.type === "end" || event.data.type === "error") worker.terminate();
      this.receive(event.data);
    };
    worker.onerror = (event) => {
      worker.terminate();
      this.receive({ type: "error", message: event.message });
    };
    worker.postMessage({ url, headers, volume: true, floats: FLOAT_VOLUMES });
  }

  private receive(message: BundleMessage): void {
    if (message.type === "header") this.accept(message.header, message.dataOffset, message.etag);
    else if (message.type === "frame") this.arrived(message.key, message.bytes);
    else if (message.type === "volume") {
      frameSources.bundle += this.header!.instances.length;
      this.gotVolume({ plan: volumePlan(this.header!)!, scalars: message.scalars });
    } else {
      if (message.type === "end") {
        performance.mark("viewer:bundle-received");
        this.complete = true;
      } else if (!this.abort.signal.aborted) {
        console.warn("series bundle unavailable, using WADO-RS:", message.message);
      }
      this.finish();
    }
  }

  frame(sop: string, number: number): Promise<BundleFrame | null> {
    const key = `${sop}/${number}`;
    const ready = this.ready(key);
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.first === undefined) {
      this.first = key;
      if (this.dataOffset >= 0) void this.fetchAhead(key);
    }
    return new Promise((resolve) => this.waiting.set(key, [...(this.waiting.get(key) ?? []), resolve]));
  }

  /** The whole series as one volume: built by the worker (volume mode) or from the frames once all are in. */
  async volume(): Promise<BundleVolume | null> {
    if (this.mode === "volume") return this.built;
    await this.finished;
    const plan = this.header && volumePlan(this.header);
    if (!plan || !this.complete) return null;
    const builder = new VolumeBuilder(plan, FLOAT_VOLUMES);
    plan.keys.forEach((key, slice) => builder.add(slice, this.frames.get(key)!));
    return { plan, scalars: builder.result() };
  }

  /** Bytes of frames this page holds for the series (the volume, once handed over, belongs to Cornerstone). */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Stop the stream and drop every frame: the series is closed. */
  release(): void {
    this.abort.abort();
    this.worker?.terminate();
    this.frames.clear();
    this.heldBytes = 0;
    this.finish();
  }

  /** The frame if its bytes are here, null if they never will be, undefined while they may still come. */
  private ready(key: string): BundleFrame | null | undefined {
    const bytes = this.frames.get(key);
    // a copy: decoders may transfer or keep the buffer they get, and the frame may be loaded again later
    if (bytes) return { bytes: bytes.slice(), transferSyntax: this.transferSyntax };
    return this.over ? null : undefined;
  }

  private arrived(key: string, bytes: Uint8Array): void {
    if (this.abort.signal.aborted) return;
    if (!this.frames.has(key)) {
      this.frames.set(key, bytes);
      this.heldBytes += bytes.byteLength;
    }
    const resolvers = this.waiting.get(key);
    if (!resolvers) return;
    this.waiting.delete(key);
    const frame = this.ready(key)!;
    for (const resolve of resolvers) resolve(frame);
  }

  private finish(): void {
    this.over = true;
    this.gotMetadata(null);
    this.gotVolume(null);
    this.ended();
    for (const [key, resolvers] of this.waiting) {
      this.waiting.delete(key);
      for (const resolve of resolvers) resolve(this.ready(key)!);
    }
  }

  /** The first image's frame by a Range request of its own: the stream brings it only after the frames before it. */
  private async fetchAhead(key: string): Promise<void> {
    const span = this.spans.get(key);
    if (!span || !this.etag || this.frames.has(key) || this.mode === "volume") return;
    const start = this.dataOffset + span[0];
    const headers = new Headers(this.headers);
    headers.set("Range", `bytes=${start}-${start + span[1] - 1}`);
    headers.set("If-Range", this.etag); // the same version of the series, or nothing
    try {
      const response = await fetch(`${this.seriesUrl}/bundle?encoding=raw`, { headers, signal: this.abort.signal });
      if (response.status !== 206) {
        await response.body?.cancel();
        return;
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length === span[1]) this.arrived(key, bytes);
    } catch (error) {
      if (!this.abort.signal.aborted) console.warn("bundle: range request failed; the frame comes with the stream", error);
    }
  }

  private accept(header: BundleHeader, dataOffset: number, etag: string): void {
    performance.mark("viewer:bundle-header");
    this.header = header;
    this.transferSyntax = header.transfer_syntax;
    this.dataOffset = dataOffset;
    this.etag = etag;
    for (const instance of header.instances) {
      instance.frames.forEach((span, i) => this.spans.set(`${instance.sop_uid}/${i + 1}`, span));
    }
    this.gotMetadata(header.metadata);
    if (this.first !== undefined) void this.fetchAhead(this.first);
  }
}

/** Start streaming a series (idempotent); resolves to its metadata from the bundle's header, or null when the
 * server has no bundle (then use WADO-RS metadata). ``seriesUrl``: ``<DICOMweb root>/studies/<s>/series/<se>``.
 * ``mode``: frames for the image loader (stack), or one volume built off the main thread (MPR). */
export function streamSeries(seriesUrl: string, mode: StreamMode = "frames"): Promise<Record<string, unknown>[] | null> {
  if (!enabled) return Promise.resolve(null);
  if (!bundles.has(seriesUrl)) bundles.set(seriesUrl, new SeriesBundle(seriesUrl, mode));
  return bundles.get(seriesUrl)!.metadata;
}

/** The frame of a WADO-RS image id from its series' bundle; resolves to null when WADO-RS must be used. */
export function bundleFrame(imageId: string): Promise<BundleFrame | null> {
  const match = FRAME_ID.exec(imageId);
  if (!enabled || !match) return Promise.resolve(null);
  streamSeries(match[1]);
  return bundles.get(match[1])!.frame(match[2], Number(match[3]));
}

/** The series as one volume of modality values straight from its raw bundle, or null (not one plain volume, no
 * bundle): then Cornerstone's volume loader reads it frame by frame, from the frames this stream brought if any.
 * A volume is handed over once: the stream is dropped after, so the series is not held twice. */
export async function seriesVolume(seriesUrl: string): Promise<BundleVolume | null> {
  if (!enabled) return null;
  streamSeries(seriesUrl, "volume");
  const volume = await bundles.get(seriesUrl)!.volume();
  if (volume) releaseSeries(seriesUrl);
  return volume;
}

/** Forget a series' stream and frames (the series was closed or another took its place). */
export function releaseSeries(seriesUrl: string): void {
  bundles.get(seriesUrl)?.release();
  bundles.delete(seriesUrl);
}

/** Bytes of bundle frames the page holds now, over every series (the test hook reports it). */
export function bundleBytes(): number {
  let total = 0;
  for (const bundle of bundles.values()) total += bundle.bytes;
  return total;
}

/** Frames loaded so far from bundles and by WADO-RS (the test hook and the benchmark report it). */
export const frameSources = { bundle: 0, wadors: 0 };
