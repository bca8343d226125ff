// The series bundle reader (bundleReader.ts) in a worker, off the main thread. ``volume``: build the whole volume
// here (volume.ts; ``floats``: as 32-bit floats) and hand it over once, when the series is one plain volume;
// otherwise each frame is handed on as it arrives.
import { readBundle, type BundleMessage } from "./bundleReader";
import { VolumeBuilder, volumePlan } from "./volume";

const post = (message: BundleMessage, transfer: Transferable[] = []) => self.postMessage(message, { transfer });

self.onmessage = (event: MessageEvent<{ url: string; headers: [string, string][]; volume: boolean; floats: boolean }>) => {
  let builder: VolumeBuilder | null = null;
  let slices = new Map<string, number>();
  readBundle(event.data.url, event.data.headers, {
    header(header, dataOffset, etag) {
      const plan = event.data.volume ? volumePlan(header) : null;
      if (plan) {
        builder = new VolumeBuilder(plan, event.data.floats);
        slices = new Map(plan.keys.map((key, i) => [key, i]));
      }
      post({ type: "header", header, dataOffset, etag });
    },
    frame(key, bytes) {
      if (builder) return builder.add(slices.get(key)!, bytes);
      const copy = bytes.slice();
      post({ type: "frame", key, bytes: copy }, [copy.buffer]);
    },
  }).then(
    () => {
      if (builder) {
        const scalars = builder.result();
        post({ type: "volume", scalars }, [scalars.buffer]);
      }
      post({ type: "end" });
    },
    (error) => post({ type: "error", message: String(error) }),
  );
};
