// The series bundle reader (bundleReader.ts) in a worker, off the main thread.
import { readBundle, type BundleMessage } from "./bundleReader";

const post = (message: BundleMessage, transfer: Transferable[] = []) => self.postMessage(message, { transfer });

self.onmessage = (event: MessageEvent<{ url: string; headers: [string, string][] }>) => {
  readBundle(event.data.url, event.data.headers, post).then(
    () => post({ type: "end" }),
    (error) => post({ type: "error", message: String(error) }),
  );
};
