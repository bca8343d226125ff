// The viewer page's entry (small): asks the DICOMweb server for the study's series and metadata at once, streams
// the first series' bundle, and draws its first image (firstPaint.ts) before the large rendering code (Cornerstone3D,
// in app.ts) is evaluated: that takes most of a second and would hold the main thread while the frame is here.
// The browser fetches and compiles app.ts meanwhile (a modulepreload link, see vite.config.js). MPR pages start the
// volume's stream in a worker and load app.ts at once.
import { takeTokenFromUrl } from "../common/api";
import { bundleFrame } from "./bundle";
import { DicomWebClient, type SeriesInfo } from "./dicomweb";
import { paintFrame } from "./firstPaint";
import { markPresented } from "./timings";

const FIRST_PAINT_WAIT_MS = 1500; // then Cornerstone starts regardless

performance.mark("viewer:entry");
takeTokenFromUrl();
const params = new URLSearchParams(location.search);
const study = params.get("study");
const stack = params.get("mode") !== "mpr";
const wanted = params.get("series") ?? undefined; // the series to show first (the study list links to one)
const client = new DicomWebClient(params.get("dicomweb") ?? "/dicomweb");
const seriesOfStudy: Promise<SeriesInfo[]> = study
  ? client.seriesOf(study, stack ? "frames" : "volume", wanted)
  : Promise.resolve([]);
seriesOfStudy.catch(() => undefined); // reported by app.start

/** The middle image of the series shown first, drawn on a canvas; resolves either way. */
async function firstPaint(): Promise<void> {
  const all = await seriesOfStudy;
  const series = all.find((s) => s.seriesUid === wanted) ?? all[0];
  if (!series) return;
  const middle = Math.floor(series.instances.length / 2);
  const instance = series.instances[middle];
  const frame = await bundleFrame(client.frameImageIds(series, instance)[0]);
  const host = document.querySelector<HTMLElement>(".cell");
  if (!frame || !host || !paintFrame(host, instance, frame.bytes, frame.transferSyntax)) return;
  await new Promise<void>((resolve) => markPresented("firstImageMs", resolve));
}

function startApp(): void {
  import("./app")
    .then((app) => app.start(seriesOfStudy).catch(app.failed))
    .catch((error) => {
      document.getElementById("statusbar")!.textContent = `加载失败：${String(error)}`;
    });
}

if (stack && study) {
  const giveUp = new Promise<void>((resolve) => setTimeout(resolve, FIRST_PAINT_WAIT_MS));
  void Promise.race([firstPaint().catch((error) => console.warn("first paint skipped:", error)), giveUp])
    .then(startApp);
} else {
  startApp();
}
