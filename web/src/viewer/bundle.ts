// The fast path: a whole series in one streamed request (our server's ``.../series/{se}/bundle``, format in
// pipelines/dicomweb/bundle.py: "WYBUNDL1" | u32 header length | JSON header | frame data). Frames are handed to
// the image loader as their bytes arrive; any other DICOMweb server answers 404 and the viewer uses WADO-RS frames.
// No Cornerstone import here: main.ts starts the first series' stream while Cornerstone is still loading.
import { token } from "../common/api";
import { readBundle, type BundleMessage } from "./bundleReader";

export interface BundleFrame {
  bytes: Uint8Array;
  transferSyntax: string;
}

interface BundleHeader {
  format: string;
  metadata: Record<string, unknown>[];
  transfer_syntax: string;
  data_length: number;
  instances: { sop_uid: string; frames: [number, number][] }[];
}

/** ``wadors:<series URL>/instances/<sop>/frames/<n>``, the image ids the viewer's DICOMweb client makes. */
const FRAME_ID = /^wadors:(.+\/studies\/[^/]+\/series\/[^/]+)\/instances\/([^/]+)\/frames\/(\d+)$/;

const query = new URLSearchParams(location.search);
const enabled = query.get("bundle") !== "0"; // ?bundle=0: WADO-RS frames only
// A page opened in MPR wants the whole volume at once: read it in a worker, off the busy main thread.
const offMainThread = query.get("mode") === "mpr";
const bundles = new Map<string, SeriesBundle>();

class SeriesBundle {
  private spans = new Map<string, [number, number]>(); // "sop/frame" (1-based) -> [offset, length]
  private frames = new Map<string, Uint8Array>(); // arrived (from the stream, or the first one by Range)
  private waiting = new Map<string, ((frame: BundleFrame | null) => void)[]>();
  private transferSyntax = "";
  private over = false; // finished or failed: frames not received by then come from WADO-RS
  private first: string | undefined; // the first frame asked for (the image shown first), fetched ahead by Range
  private dataOffset = -1;
  private etag = "";
  private headers = new Headers({ Accept: "application/vnd.wanying.series-bundle" });
  private gotMetadata: (metadata: Record<string, unknown>[] | null) => void = () => undefined;
  /** The series' DICOM JSON metadata from the bundle's header (null without a bundle). */
  readonly metadata = new Promise<Record<string, unknown>[] | null>((resolve) => (this.gotMetadata = resolve));

  constructor(private readonly seriesUrl: string) {
    const bearer = token();
    if (bearer) this.headers.set("Authorization", `Bearer ${bearer}`);
    const url = `${seriesUrl}/bundle?encoding=raw`;
    const headers = [...this.headers.entries()];
    if (!offMainThread) {
      void readBundle(url, headers, (message) => this.receive(message)).then(
        () => this.receive({ type: "end" }),
        (error) => this.receive({ type: "error", message: String(error) }),
      );
      return;
    }
    const worker = new Worker(new URL("./bundleWorker.ts", import.meta.url), { type: "module" });
    worker.onmessage = (event: MessageEvent<BundleMessage>) => {
      if (event.data.type === "end" || event.data.type === "error") worker.terminate();
      this.receive(event.data);
    };
    worker.onerror = (event) => {
      worker.terminate();
      this.receive({ type: "error", message: event.message });
    };
    worker.postMessage({ url, headers });
  }

  private receive(message: BundleMessage): void {
    if (message.type === "header") this.accept(message.header as BundleHeader, message.dataOffset, message.etag);
    else if (message.type === "frame") this.arrived(message.key, message.bytes);
    else {
      if (message.type === "end") performance.mark("viewer:bundle-received");
      else console.warn("series bundle unavailable, using WADO-RS:", message.message);
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

  /** The frame if its bytes are here, null if they never will be, undefined while they may still come. */
  private ready(key: string): BundleFrame | null | undefined {
    const bytes = this.frames.get(key);
    // a copy: decoders may transfer or keep the buffer they get, and the frame may be loaded again later
    if (bytes) return { bytes: bytes.slice(), transferSyntax: this.transferSyntax };
    return this.over ? null : undefined;
  }

  private arrived(key: string, bytes: Uint8Array): void {
    if (!this.frames.has(key)) this.frames.set(key, bytes);
    const resolvers = this.waiting.get(key);
    if (!resolvers) return;
    this.waiting.delete(key);
    const frame = this.ready(key)!;
    for (const resolve of resolvers) resolve(frame);
  }

  private finish(): void {
    this.over = true;
    this.gotMetadata(null);
    for (const [key, resolvers] of this.waiting) {
      this.waiting.delete(key);
      for (const resolve of resolvers) resolve(this.ready(key)!);
    }
  }

  /** The first image's frame by a Range request of its own: the stream brings it only after the frames before it. */
  private async fetchAhead(key: string): Promise<void> {
    const span = this.spans.get(key);
    if (!span || !this.etag || this.frames.has(key)) return;
    const start = this.dataOffset + span[0];
    const headers = new Headers(this.headers);
    headers.set("Range", `bytes=${start}-${start + span[1] - 1}`);
    headers.set("If-Range", this.etag); // the same version of the series, or nothing
    try {
      const response = await fetch(`${this.seriesUrl}/bundle?encoding=raw`, { headers });
      if (response.status !== 206) {
        await response.body?.cancel();
        return;
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length === span[1]) this.arrived(key, bytes);
    } catch (error) {
      console.warn("bundle: range request failed; the frame comes with the stream", error);
    }
  }

  private accept(header: BundleHeader, dataOffset: number, etag: string): void {
    performance.mark("viewer:bundle-header");
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
 * server has no bundle (then use WADO-RS metadata). ``seriesUrl``: ``<DICOMweb root>/studies/<s>/series/<se>``. */
export function streamSeries(seriesUrl: string): Promise<Record<string, unknown>[] | null> {
  if (!enabled) return Promise.resolve(null);
  if (!bundles.has(seriesUrl)) bundles.set(seriesUrl, new SeriesBundle(seriesUrl));
  return bundles.get(seriesUrl)!.metadata;
}

/** The frame of a WADO-RS image id from its series' bundle; resolves to null when WADO-RS must be used. */
export function bundleFrame(imageId: string): Promise<BundleFrame | null> {
  const match = FRAME_ID.exec(imageId);
  if (!enabled || !match) return Promise.resolve(null);
  streamSeries(match[1]);
  return bundles.get(match[1])!.frame(match[2], Number(match[3]));
}

/** Frames loaded so far from bundles and by WADO-RS (the test hook and the benchmark report it). */
export const frameSources = { bundle: 0, wadors: 0 };
