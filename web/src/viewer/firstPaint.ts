// The first image before Cornerstone: evaluating the ~4 MB rendering bundle takes most of a second, while the first
// frame's bytes are here in a few hundred milliseconds. This draws that raw frame (modality values, the series' own
// window, or the frame's range) onto a plain canvas over the viewport, fitted as Cornerstone fits it; the viewer
// removes the canvas when Cornerstone has drawn the same image (handOver). Monochrome raw frames only.
import { storedValues } from "./volume";

type Json = Record<string, { Value?: unknown[] }>;
const num = (item: Json, tag: string): number | undefined => {
  const v = item[tag]?.Value?.[0];
  return v === undefined || v === null || v === "" ? undefined : Number(v);
};

const RAW = ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2"];

let handedOver = false; // Cornerstone drew first (a slow start): a late first paint would cover its viewport

/** Draw ``bytes`` (one raw frame of ``instance``) into ``host``; false when this frame is not one it can draw. */
export function paintFrame(host: HTMLElement, instance: Json, bytes: Uint8Array, transferSyntax: string): boolean {
  if (handedOver) return false;
  const rows = num(instance, "00280010");
  const columns = num(instance, "00280011");
  const bits = num(instance, "00280100");
  const photometric = String(instance["00280004"]?.Value?.[0] ?? "");
  if (!rows || !columns || !RAW.includes(transferSyntax) || !photometric.startsWith("MONOCHROME")) return false;
  if ((num(instance, "00280002") ?? 1) !== 1 || (bits !== 8 && bits !== 16)) return false;
  const stored = bits === 8 ? "Uint8Array" : num(instance, "00280103") ? "Int16Array" : "Uint16Array";
  if (bytes.byteLength !== rows * columns * (bits / 8)) return false;
  const values = storedValues({ stored }, bytes);
  const slope = num(instance, "00281053") ?? 1;
  const intercept = num(instance, "00281052") ?? 0;
  let center = num(instance, "00281050");
  let width = num(instance, "00281051");
  if (center === undefined || !width || width <= 0) {
    let low = Infinity;
    let high = -Infinity;
    for (let i = 0; i < values.length; i++) {
      if (values[i] < low) low = values[i];
      if (values[i] > high) high = values[i];
    }
    [low, high] = [low * slope + intercept, high * slope + intercept];
    center = (low + high) / 2;
    width = Math.max(1, high - low);
  }
  // gray = ((value - (center - 0.5)) / (width - 1) + 0.5) * 255 (PS3.3 C.11.2.1.2), on stored values
  const lower = center - 0.5 - (width - 1) / 2;
  const scale = 255 / Math.max(1, width - 1);
  const invert = photometric === "MONOCHROME1";
  const image = new ImageData(columns, rows);
  const rgba = new Uint32Array(image.data.buffer);
  for (let i = 0; i < values.length; i++) {
    let g = ((values[i] * slope + intercept - lower) * scale) | 0;
    g = g < 0 ? 0 : g > 255 ? 255 : g;
    if (invert) g = 255 - g;
    rgba[i] = 0xff000000 | (g << 16) | (g << 8) | g; // little-endian RGBA
  }
  const source = document.createElement("canvas");
  source.width = columns;
  source.height = rows;
  source.getContext("2d")!.putImageData(image, 0, 0);

  // fitted as Cornerstone fits a stack image: whole image visible, centred, square pixels in millimetres
  const spacing = (instance["00280030"]?.Value ?? [1, 1]).map(Number);
  const ratio = window.devicePixelRatio || 1;
  const canvas = document.createElement("canvas");
  canvas.className = "first-paint";
  canvas.width = Math.max(1, Math.round(host.clientWidth * ratio)); // inside the border, as the viewport
  canvas.height = Math.max(1, Math.round(host.clientHeight * ratio));
  const mmWide = columns * (spacing[1] || 1);
  const mmHigh = rows * (spacing[0] || 1);
  const fit = Math.min(canvas.width / mmWide, canvas.height / mmHigh);
  const [w, h] = [mmWide * fit, mmHigh * fit];
  const context = canvas.getContext("2d")!;
  context.fillStyle = "#000";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(source, (canvas.width - w) / 2, (canvas.height - h) / 2, w, h);
  host.append(canvas);
  return true;
}

/** Cornerstone has drawn: the first-paint canvas goes. */
export function handOver(): void {
  handedOver = true;
  document.querySelectorAll(".first-paint").forEach((canvas) => canvas.remove());
}
