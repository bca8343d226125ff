// The fast path: a whole series in one streamed request (our server's ``.../series/{se}/bundle``, format in
// pipelines/dicomweb/bundle.py: "WYBUNDL1" | u32 header length | JSON header | frame data). Frames are handed to
// the image loader as their bytes arrive; any other DICOMweb server answers 404 and the viewer uses WADO-RS frames.
// No Cornerstone import here: main.ts starts the first series' stream while Cornerstone is still loading.
import { token } from "../common/api";

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

const MAGIC = "WYBUNDL1";
const FORMAT = "wanying.series-bundle/1";
/** ``wadors:<series URL>/instances/<sop>/frames/<n>``, the image ids the viewer's DICOMweb client makes. */
const FRAME_ID = /^wadors:(.+\/studies\/[^/]+\/series\/[^/]+)\/instances\/([^/]+)\/frames\/(\d+)$/;

const enabled = new URLSearchParams(location.search).get("bundle") !== "0"; // ?bundle=0: WADO-RS frames only
const bundles = new Map<string, SeriesBundle>();

class SeriesBundle {
  private spans = new Map<string, [number, number]>(); // "sop/frame" (1-based) -> [offset, length]
  private waiting = new Map<string, ((frame: BundleFrame | null) => void)[]>();
  private data: Uint8Array | undefined;
  private received = 0;
  private transferSyntax = "";
  private over = false; // finished or failed: frames not received by then come from WADO-RS
  private first: string | undefined; // the first frame asked for (the image shown first), fetched ahead by Range
  private ahead = new Map<string, Uint8Array>();
  private dataOffset = 0;
  private etag = "";
  private headers = new Headers({ Accept: "application/vnd.wanying.series-bundle" });
  private gotMetadata: (metadata: Record<string, unknown>[] | null) => void = () => undefined;
  /** The series' DICOM JSON metadata from the bundle's header (null without a bundle). */
  readonly metadata = new Promise<Record<string, unknown>[] | null>((resolve) => (this.gotMetadata = resolve));

  constructor(private readonly seriesUrl: string) {
    const bearer = token();
    if (bearer) this.headers.set("Authorization", `Bearer ${bearer}`);
    void this.read(seriesUrl).catch((error) => console.warn("series bundle unavailable, using WADO-RS", error))
      .finally(() => this.finish());
  }

  frame(sop: string, number: number): Promise<BundleFrame | null> {
    const key = `${sop}/${number}`;
    const ready = this.ready(key);
    if (ready !== undefined) return Promise.resolve(ready);
    if (this.first === undefined) {
      this.first = key;
      if (this.data) void this.fetchAhead(key);
    }
    return new Promise((resolve) => this.waiting.set(key, [...(this.waiting.get(key) ?? []), resolve]));
  }

  /** The frame if its bytes are here, null if they never will be, undefined while they may still come. */
  private ready(key: string): BundleFrame | null | undefined {
    const early = this.ahead.get(key);
    if (early) return { bytes: early.slice(), transferSyntax: this.transferSyntax };
    const span = this.spans.get(key);
    if (span && this.data && span[0] + span[1] <= this.received) {
      // a copy: decoders may transfer or keep the buffer they get
      return { bytes: this.data.slice(span[0], span[0] + span[1]), transferSyntax: this.transferSyntax };
    }
    return this.over ? null : undefined;
  }

  private release(): void {
    for (const [key, resolvers] of this.waiting) {
      const frame = this.ready(key);
      if (frame === undefined) continue;
      this.waiting.delete(key);
      for (const resolve of resolvers) resolve(frame);
    }
  }

  private finish(): void {
    this.over = true;
    this.gotMetadata(null);
    this.release();
  }

  /** The first image's frame by a Range request of its own: the stream brings it only after the frames before it. */
  private async fetchAhead(key: string): Promise<void> {
    const span = this.spans.get(key);
    if (!span || !this.etag || span[0] + span[1] <= this.received) return;
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
      if (bytes.length === span[1]) this.ahead.set(key, bytes);
      this.release();
    } catch (error) {
      console.warn("bundle: range request failed; the frame comes with the stream", error);
    }
  }

  private async read(seriesUrl: string): Promise<void> {
    const response = await fetch(`${seriesUrl}/bundle?encoding=raw`, { headers: this.headers });
    if (!response.ok || !response.body) throw new Error(`bundle: HTTP ${response.status}`);
    this.etag = response.headers.get("ETag") ?? "";
    const reader = response.body.getReader();
    let prefix = new Uint8Array(0); // bytes before the frame data
    let dataStart = -1;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      let chunk = value;
      if (dataStart < 0) {
        prefix = concat(prefix, chunk);
        const header = parseHeader(prefix);
        if (!header) continue;
        dataStart = this.dataOffset = header.dataOffset;
        this.accept(header.header);
        if (this.first !== undefined) void this.fetchAhead(this.first);
        performance.mark("viewer:bundle-header");
        chunk = prefix.subarray(dataStart);
      }
      if (this.received + chunk.length > this.data!.length) throw new Error("bundle: more frame data than declared");
      this.data!.set(chunk, this.received);
      this.received += chunk.length;
      this.release();
    }
    performance.mark("viewer:bundle-received");
    if (this.received < (this.data?.length ?? 1)) throw new Error("bundle: stream ended early");
  }

  private accept(header: BundleHeader): void {
    this.transferSyntax = header.transfer_syntax;
    this.data = new Uint8Array(header.data_length);
    for (const instance of header.instances) {
      instance.frames.forEach((span, i) => this.spans.set(`${instance.sop_uid}/${i + 1}`, span));
    }
    this.gotMetadata(header.metadata);
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function parseHeader(buf: Uint8Array): { header: BundleHeader; dataOffset: number } | undefined {
  if (buf.length < 12) return undefined;
  if (new TextDecoder().decode(buf.subarray(0, 8)) !== MAGIC) throw new Error("bundle: bad magic");
  const size = new DataView(buf.buffer, buf.byteOffset, buf.byteLength).getUint32(8, true);
  if (buf.length < 12 + size) return undefined;
  const header = JSON.parse(new TextDecoder().decode(buf.subarray(12, 12 + size))) as BundleHeader;
  if (header.format !== FORMAT) throw new Error(`bundle: unsupported format ${header.format}`);
  return { header, dataOffset: 12 + size };
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
