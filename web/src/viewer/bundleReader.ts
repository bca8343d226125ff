// Reads a series bundle stream (format in pipelines/dicomweb/bundle.py: "WYBUNDL1" | u32 header length | JSON header
// | frame data) and hands on each frame as soon as its bytes are in, in stream order. Runs on the main thread for a
// stack (frames for the image loader; the first image comes ahead by a Range request) and in bundleWorker.ts for
// MPR (the whole volume built off the busy main thread).
import type { BundleHeader } from "./volume";

export type BundleMessage =
  | { type: "header"; header: BundleHeader; dataOffset: number; etag: string }
  | { type: "frame"; key: string; bytes: Uint8Array }
  | { type: "volume"; scalars: Int16Array | Float32Array }
  | { type: "end" }
  | { type: "error"; message: string };

export interface BundleHandlers {
  header(header: BundleHeader, dataOffset: number, etag: string): void;
  /** ``bytes`` is a view into the stream's buffer: copy it to keep it apart from the rest. */
  frame(key: string, bytes: Uint8Array): void;
}

interface Span {
  key: string;
  offset: number;
  length: number;
}

const MAGIC = "WYBUNDL1";
const FORMAT = "wanying.series-bundle/1";

export async function readBundle(url: string, headers: [string, string][], on: BundleHandlers,
  signal?: AbortSignal): Promise<void> {
  performance.mark("viewer:bundle-requested");
  const response = await fetch(url, { headers, signal });
  if (!response.ok || !response.body) throw new Error(`bundle: HTTP ${response.status}`);
  const reader = response.body.getReader();
  let prefix = new Uint8Array(0);
  let data: Uint8Array | undefined;
  let received = 0;
  let spans: Span[] = [];
  let next = 0; // spans[next] is the first frame not handed on yet
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    let chunk = value;
    if (!data) {
      const joined = new Uint8Array(prefix.length + chunk.length);
      joined.set(prefix);
      joined.set(chunk, prefix.length);
      prefix = joined;
      const parsed = parseHeader(prefix);
      if (!parsed) continue;
      data = new Uint8Array(parsed.header.data_length);
      spans = parsed.header.instances
        .flatMap((i) => i.frames.map(([offset, length], f) => ({ key: `${i.sop_uid}/${f + 1}`, offset, length })))
        .sort((a, b) => a.offset - b.offset);
      on.header(parsed.header, parsed.dataOffset, response.headers.get("ETag") ?? "");
      chunk = prefix.subarray(parsed.dataOffset);
      prefix = new Uint8Array(0);
    }
    if (received + chunk.length > data.length) throw new Error("bundle: more frame data than declared");
    data.set(chunk, received);
    received += chunk.length;
    while (next < spans.length && spans[next].offset + spans[next].length <= received) {
      const { key, offset, length } = spans[next++];
      on.frame(key, data.subarray(offset, offset + length));
    }
  }
  if (!data || received < data.length) throw new Error("bundle: stream ended early");
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
