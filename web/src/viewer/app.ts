// The viewer proper (loaded by main.ts): series list, stack/compare/MPR modes, tools, the test hook (window.__viewer).
import {
  cache, Enums, eventTarget, volumeLoader, setVolumesForViewports, StackViewport, utilities as csUtils,
  type RenderingEngine, type Types,
} from "@cornerstonejs/core";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";
import * as tools from "@cornerstonejs/tools";
import { $, el } from "../common/dom";
import { errorMessage } from "../common/strings";
import { DicomWebClient, slicePosition, value, type DicomJson, type SeriesInfo } from "./dicomweb";
import { PRESETS, setWindowLevel, valueAtWorld, windowLevelOf, type Viewport } from "./pixels";
import {
  MPR_GROUP, PRIMARY_TOOLS, STACK_GROUP, VR_GROUP, configureLabels, setPrimaryTool, startCornerstone, type PrimaryTool,
} from "./setup";
import { ComparisonLink } from "./sync";
import { bundleBytes, frameSources, releaseSeries, seriesVolume, type BundleVolume } from "./bundle";
import { handOver } from "./firstPaint";
import { markPresented, timings } from "./timings";
import { installHook, type Measurement, type ViewerHook } from "./hook";

type Mode = "stack" | "compare" | "mpr";
type Layout = "1x1" | "1x2" | "2x2";
const CELLS = { "1x1": 1, "1x2": 2, "2x2": 4 } as const;
const MPR_VIEWS: [string, Enums.OrientationAxis][] = [
  ["轴位", Enums.OrientationAxis.AXIAL],
  ["矢状位", Enums.OrientationAxis.SAGITTAL],
  ["冠状位", Enums.OrientationAxis.CORONAL],
];

const params = new URLSearchParams(location.search);
const client = new DicomWebClient(params.get("dicomweb") ?? "/dicomweb");

export const state = {
  engine: undefined as RenderingEngine | undefined,
  series: [] as SeriesInfo[],
  priorSeries: [] as SeriesInfo[],
  mode: "stack" as Mode,
  layout: "1x1" as Layout,
  assigned: [0, 1, 2, 3], // series index shown in each stack cell
  active: 0,
  tool: "windowLevel" as PrimaryTool,
  link: undefined as ComparisonLink | undefined,
  volumeId: undefined as string | undefined,
  mip: false,
  cine: false,
  last: undefined as Measurement | undefined,
  lastAnnotation: undefined as tools.Types.Annotation | undefined, // stats are computed on later renders
};

const grid = $("#grid");
const cells = [...grid.querySelectorAll<HTMLDivElement>(".cell")];
const elements = cells.map((cell) => cell.querySelector<HTMLDivElement>(".vp")!);
const overlays = cells.map((cell) => cell.querySelector<HTMLDivElement>(".overlay")!);
const statusbar = $("#statusbar");

function say(text: string, error = false): void {
  statusbar.textContent = text;
  statusbar.classList.toggle("error", error);
}

export function viewportAt(index: number): Viewport | undefined {
  return state.engine?.getViewport(`vp${index}`) as Viewport | undefined;
}

function activeViewport(): Viewport | undefined {
  return viewportAt(state.active) ?? viewportAt(0);
}

function imageIdsOf(series: SeriesInfo): string[] {
  return series.instances.flatMap((instance) => {
    const imageIds = client.frameImageIds(series, instance);
    for (const imageId of imageIds) dicomImageLoader.wadors.metaDataManager.add(imageId, instance as never);
    return imageIds;
  });
}

// ------------------------------------------------------------------ overlays and status

function describe(index: number): string {
  const viewport = viewportAt(index);
  if (!viewport) return "";
  const label = cells[index].dataset.label ?? "";
  const wl = windowLevelOf(viewport);
  const wlText = wl ? `窗宽 ${Math.round(wl.width)} 窗位 ${Math.round(wl.center)}` : "";
  if ("getImageIds" in viewport && state.mode !== "mpr") {
    const count = (viewport as Types.IStackViewport).getImageIds().length;
    return `${label}\n第 ${viewport.getCurrentImageIdIndex() + 1}/${count} 张  ${wlText}`;
  }
  if (viewport.type === Enums.ViewportType.VOLUME_3D) return label;
  return `${label}\n${wlText}${state.mip ? `  MIP ${viewportSlab(viewport)} mm` : ""}`;
}

function viewportSlab(viewport: Viewport): number {
  return "getSlabThickness" in viewport ? Math.round((viewport as Types.IVolumeViewport).getSlabThickness()) : 0;
}

function refreshOverlay(index: number): void {
  overlays[index].textContent = describe(index);
}

function watch(index: number): void {
  const element = elements[index];
  if (element.dataset.watched) return;
  element.dataset.watched = "1";
  const refresh = () => refreshOverlay(index);
  for (const type of [Enums.Events.STACK_NEW_IMAGE, Enums.Events.VOI_MODIFIED, Enums.Events.CAMERA_MODIFIED,
    Enums.Events.IMAGE_RENDERED]) {
    element.addEventListener(type, refresh);
  }
  element.addEventListener(Enums.Events.IMAGE_RENDERED, () => {
    if (state.mode !== "stack") return;
    handOver(); // Cornerstone has drawn: the first-paint canvas (main.ts) goes
    if (timings.firstImageMs === null) timings.firstImageMs = Math.round(performance.now());
  });
  let down: [number, number] | undefined;
  element.addEventListener("pointerdown", (event) => {
    selectCell(index);
    down = [event.clientX, event.clientY];
  });
  element.addEventListener("pointermove", (event) => showValue(index, event));
  element.addEventListener("pointerup", (event) => {
    const still = down && Math.hypot(event.clientX - down[0], event.clientY - down[1]) < 4;
    if (still && state.tool === "probe") probeAt(index, event.clientX, event.clientY);
  });
}

/** Cornerstone 5.14's ProbeTool loses the value on stack images after the first: the viewer reads it itself. */
function probeAt(index: number, clientX: number, clientY: number): void {
  const hu = valueAtClient(index, clientX, clientY);
  if (hu === null) return;
  state.last = { tool: "probe", hu };
  state.lastAnnotation = undefined;
  say(formatMeasurement(state.last));
}

function showValue(index: number, event: PointerEvent): void {
  const hu = valueAtClient(index, event.clientX, event.clientY);
  if (hu !== null) say(`CT值 ${Math.round(hu)} HU`);
}

export function valueAtClient(index: number, clientX: number, clientY: number): number | null {
  const viewport = viewportAt(index);
  if (!viewport) return null;
  const rect = elements[index].getBoundingClientRect();
  const world = viewport.canvasToWorld([clientX - rect.left, clientY - rect.top]);
  return valueAtWorld(viewport, world);
}

function selectCell(index: number): void {
  state.active = index;
  cells.forEach((cell, i) => cell.classList.toggle("active", i === index));
}

// ------------------------------------------------------------------ modes

function clearViewports(): void {
  stopCine();
  state.link?.dispose();
  state.link = undefined;
  const engine = state.engine!;
  for (const viewport of engine.getViewports()) {
    for (const name of [STACK_GROUP, MPR_GROUP, VR_GROUP]) {
      tools.ToolGroupManager.getToolGroup(name)?.removeViewports(engine.id, viewport.id);
    }
    engine.disableElement(viewport.id);
  }
  cells.forEach((cell) => {
    cell.dataset.label = "";
  });
  overlays.forEach((overlay) => (overlay.textContent = ""));
}

function setLayout(layout: Layout): void {
  state.layout = layout;
  grid.className = `grid layout-${layout}`;
  cells.forEach((cell, i) => (cell.hidden = i >= CELLS[layout]));
  document.querySelectorAll<HTMLButtonElement>("[data-layout]").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.dataset.layout === layout && state.mode === "stack")));
}

async function showStack(index: number, series: SeriesInfo, label: string, initialIndex?: number): Promise<void> {
  const engine = state.engine!;
  engine.enableElement({ viewportId: `vp${index}`, element: elements[index], type: Enums.ViewportType.STACK });
  tools.ToolGroupManager.getToolGroup(STACK_GROUP)!.addViewport(`vp${index}`, engine.id);
  cells[index].dataset.label = label;
  watch(index);
  const viewport = engine.getViewport(`vp${index}`) as Types.IStackViewport;
  const ids = imageIdsOf(series);
  await viewport.setStack(ids, initialIndex ?? Math.floor(ids.length / 2));
  performance.mark(`viewer:stack-set-${index}`);
  viewport.render();
  refreshOverlay(index);
}

async function enterStack(layout: Layout = state.layout): Promise<void> {
  clearViewports();
  state.mode = "stack";
  setModeButtons();
  setLayout(layout);
  const count = CELLS[layout];
  await Promise.all(
    Array.from({ length: count }, (_, i) => {
      const series = state.series[state.assigned[i] % state.series.length];
      return showStack(i, series, seriesLabel(series));
    }),
  );
  selectCell(Math.min(state.active, count - 1));
  applyTool();
}

function seriesLabel(series: SeriesInfo): string {
  return `${series.modality} ${series.description || `序列 ${series.number}`}`.trim();
}

async function enterCompare(): Promise<void> {
  if (state.priorSeries.length === 0) {
    say("没有找到该患者的前次检查", true);
    return;
  }
  clearViewports();
  state.mode = "compare";
  setModeButtons();
  setLayout("1x2");
  const current = state.series[state.assigned[state.active] % state.series.length] ?? state.series[0];
  const prior = state.priorSeries.find((s) => s.modality === current.modality) ?? state.priorSeries[0];
  const currentIndex = Math.floor(current.instances.length / 2);
  await showStack(0, current, `本次 ${seriesLabel(current)}`, currentIndex);
  // Start the prior at the same relative level; the user can re-align (重新对齐) after scrolling one alone.
  const priorIndex = Math.round((currentIndex / Math.max(1, current.instances.length - 1)) * (prior.instances.length - 1));
  await showStack(1, prior, `前次 ${seriesLabel(prior)}`, priorIndex);
  state.link = new ComparisonLink(
    { viewport: viewportAt(0) as Types.IStackViewport, positions: current.instances.map(slicePosition) },
    { viewport: viewportAt(1) as Types.IStackViewport, positions: prior.instances.map(slicePosition) },
  );
  selectCell(0);
  applyTool();
}

let mprEntries = 0;

async function enterMpr(): Promise<void> {
  clearViewports();
  state.mode = "mpr";
  state.mip = false;
  setModeButtons();
  setLayout("2x2");
  const series = state.series[state.assigned[state.active] % state.series.length] ?? state.series[0];
  const engine = state.engine!;
  state.volumeId = undefined;
  const entry = ++mprEntries; // a newer enterMpr (or leaving MPR) while this one loads wins
  const ids = MPR_VIEWS.map((_, i) => `vp${i}`);
  engine.setViewports(MPR_VIEWS.map(([, orientation], i) => ({
    viewportId: ids[i], element: elements[i], type: Enums.ViewportType.ORTHOGRAPHIC,
    defaultOptions: { orientation, background: [0, 0, 0] as Types.Point3 },
  })));
  const group = tools.ToolGroupManager.getToolGroup(MPR_GROUP)!;
  MPR_VIEWS.forEach(([label], i) => {
    group.addViewport(ids[i], engine.id);
    cells[i].dataset.label = `${label} ${seriesLabel(series)}`;
    watch(i);
  });
  cells[3].dataset.label = "三维（点击“三维”按钮）";
  refreshOverlay(3);
  say("正在加载容积数据…");
  const volumeId = await loadVolume(series);
  if (state.mode !== "mpr" || entry !== mprEntries) return;
  performance.mark("viewer:volume-loaded");
  await setVolumesForViewports(engine, [{ volumeId }], ids);
  if (state.mode !== "mpr" || entry !== mprEntries) return;
  state.volumeId = volumeId;
  const own = seriesWindow(series);
  const voiRange = own && { lower: own.center - own.width / 2, upper: own.center + own.width / 2 };
  if (voiRange) ids.forEach((id) => (engine.getViewport(id) as Viewport).setProperties({ voiRange }));
  performance.mark("viewer:volume-set");
  engine.renderViewports(ids); // drawn at the next animation frame (texture upload included)
  markPresented("mprReadyMs", () => say("多平面重建已就绪"));
  ids.forEach((_, i) => refreshOverlay(i));
  selectCell(0);
  applyTool();
}

/** The series' volume in Cornerstone's cache: built from its raw bundle (bundle.ts, volume.ts) when the server has
 * one, else by Cornerstone's streaming loader from WADO-RS frames. Resolves to the volume's id once fully loaded. */
async function loadVolume(series: SeriesInfo): Promise<string> {
  // no scheme (no colon): Cornerstone would look for an image loader of that scheme to find a default window
  const localId = `wanyingBundleVolume_${series.seriesUid}`;
  const streamingId = `cornerstoneStreamingImageVolume:${series.seriesUid}`;
  if (cache.getVolume(localId)) return localId;
  if (!cache.getVolume(streamingId)) {
    const built = await seriesVolume(client.seriesUrl(series));
    if (built) {
      cacheBundleVolume(localId, built);
      return localId;
    }
  }
  const volume = await volumeLoader.createAndCacheVolume(streamingId, { imageIds: imageIdsOf(series) });
  if (volume.loadStatus?.loaded) return streamingId;
  await new Promise<void>((resolve) => {
    const done = (event: Event) => {
      if ((event as CustomEvent).detail?.volumeId !== streamingId) return;
      eventTarget.removeEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, done);
      resolve();
    };
    eventTarget.addEventListener(Enums.Events.IMAGE_VOLUME_LOADING_COMPLETED, done);
    volume.load();
  });
  return streamingId;
}

function cacheBundleVolume(volumeId: string, { plan, scalars }: BundleVolume): void {
  const first = plan.metadata[0] as DicomJson;
  const text = (tag: string) => String(value(first, tag) ?? "");
  volumeLoader.createLocalVolume(volumeId, {
    scalarData: scalars,
    dimensions: plan.dimensions,
    spacing: plan.spacing,
    origin: plan.origin,
    direction: plan.direction as Types.Mat3,
    metadata: {
      BitsAllocated: scalars instanceof Float32Array ? 32 : 16,
      BitsStored: scalars instanceof Float32Array ? 32 : 16,
      HighBit: scalars instanceof Float32Array ? 31 : 15,
      SamplesPerPixel: 1,
      PixelRepresentation: 1,
      PhotometricInterpretation: text("00280004") || "MONOCHROME2",
      Modality: text("00080060"),
      SeriesInstanceUID: text("0020000E"),
      FrameOfReferenceUID: text("00200052"),
      ImageOrientationPatient: plan.direction.slice(0, 6),
      PixelSpacing: [plan.spacing[1], plan.spacing[0]],
      Columns: plan.dimensions[0],
      Rows: plan.dimensions[1],
      voiLut: plan.window ? [{ windowCenter: plan.window.center, windowWidth: plan.window.width }] : [],
    } as unknown as Types.Metadata,
  } as never);
}

/** The series' own window (the first image's WindowCenter/Width), as the stack shows it. */
function seriesWindow(series: SeriesInfo): { width: number; center: number } | null {
  const first = series.instances[0];
  const center = Number(value(first, "00281050"));
  const width = Number(value(first, "00281051"));
  return Number.isFinite(center) && width > 0 ? { width, center } : null;
}

/** Software WebGL renders 3D slowly: the 3D viewport joins only once the volume is loaded, coarsely sampled. */
async function showVolumeRendering(): Promise<void> {
  if (state.mode !== "mpr" || timings.mprReadyMs === null || !state.volumeId) {
    say("请先进入多平面重建并等待加载完成", true);
    return;
  }
  const engine = state.engine!;
  engine.enableElement({
    viewportId: "vp3", element: elements[3], type: Enums.ViewportType.VOLUME_3D,
    defaultOptions: { orientation: Enums.OrientationAxis.CORONAL, background: [0.1, 0.1, 0.12] as Types.Point3 },
  });
  tools.ToolGroupManager.getToolGroup(VR_GROUP)!.addViewport("vp3", engine.id);
  cells[3].dataset.label = "三维容积重建";
  watch(3);
  await setVolumesForViewports(engine, [{ volumeId: state.volumeId }], ["vp3"]);
  const viewport = engine.getViewport("vp3") as Types.IVolumeViewport;
  viewport.setProperties({ preset: "CT-Bone", sampleDistanceMultiplier: 4 });
  viewport.render();
  markPresented("vrReadyMs");
}

function toggleMip(): void {
  if (state.mode !== "mpr") return;
  state.mip = !state.mip;
  const slab = Number(($("#slab") as HTMLInputElement).value) || 20;
  for (let i = 0; i < 3; i++) {
    const viewport = viewportAt(i) as Types.IVolumeViewport | undefined;
    if (!viewport) continue;
    viewport.setBlendMode(state.mip ? Enums.BlendModes.MAXIMUM_INTENSITY_BLEND : Enums.BlendModes.COMPOSITE);
    if (state.mip) viewport.setSlabThickness(slab);
    else viewport.resetSlabThickness();
    viewport.render();
    refreshOverlay(i);
  }
  $("#mip").setAttribute("aria-pressed", String(state.mip));
}

function setModeButtons(): void {
  document.querySelectorAll<HTMLButtonElement>("[data-mode]").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.dataset.mode === state.mode)));
  document.querySelectorAll<HTMLElement>(".mpr-only").forEach((node) => (node.hidden = state.mode !== "mpr"));
  $("#realign").hidden = state.mode !== "compare";
}

// ------------------------------------------------------------------ tools

function applyTool(): void {
  for (const name of [STACK_GROUP, MPR_GROUP]) setPrimaryTool(tools.ToolGroupManager.getToolGroup(name)!, state.tool);
  document.querySelectorAll<HTMLButtonElement>("[data-tool]").forEach((b) =>
    b.setAttribute("aria-pressed", String(b.dataset.tool === state.tool)));
}

function scrollActive(delta: number): void {
  const viewport = activeViewport();
  if (!viewport) return;
  if (viewport instanceof StackViewport) {
    const last = viewport.getImageIds().length - 1;
    void viewport.setImageIdIndex(Math.max(0, Math.min(last, viewport.getCurrentImageIdIndex() + delta)));
  } else {
    csUtils.scroll(viewport, { delta });
  }
}

function stopCine(): void {
  for (const element of elements) tools.utilities.cine.stopClip(element);
  state.cine = false;
  $("#cine").setAttribute("aria-pressed", "false");
  $("#cine").textContent = "播放";
}

function toggleCine(): void {
  if (state.cine) return stopCine();
  const viewport = activeViewport();
  if (!viewport) return;
  const fps = Number(($("#fps") as HTMLInputElement).value) || 10;
  tools.utilities.cine.playClip(viewport.element, { framesPerSecond: fps, loop: true });
  state.cine = true;
  $("#cine").setAttribute("aria-pressed", "true");
  $("#cine").textContent = "停止";
}

function measurementOf(annotation: tools.Types.Annotation): Measurement | undefined {
  const name = annotation.metadata.toolName;
  const stats = Object.values((annotation.data as { cachedStats?: Record<string, Record<string, number>> })
    .cachedStats ?? {})[0] ?? {};
  const points = annotation.data.handles?.points ?? [];
  if (name === PRIMARY_TOOLS.length) return { tool: "length", length: stats.length };
  if (name === PRIMARY_TOOLS.angle) return { tool: "angle", angle: stats.angle };
  if (name === PRIMARY_TOOLS.roi) {
    return { tool: "roi", mean: stats.mean, stdDev: stats.stdDev, area: stats.area, max: stats.max, min: stats.min };
  }
  if (name === PRIMARY_TOOLS.probe && points[0]) {
    const viewport = viewportForAnnotation(annotation);
    const hu = viewport ? valueAtWorld(viewport, points[0] as Types.Point3) : null;
    return { tool: "probe", hu: hu ?? undefined };
  }
  return undefined;
}

function viewportForAnnotation(annotation: tools.Types.Annotation): Viewport | undefined {
  const frame = annotation.metadata.FrameOfReferenceUID;
  for (let i = 0; i < 4; i++) {
    const viewport = viewportAt(i);
    if (viewport && viewport.getFrameOfReferenceUID() === frame) return viewport;
  }
  return activeViewport();
}

function onAnnotation(event: Event): void {
  const annotation = (event as CustomEvent).detail?.annotation as tools.Types.Annotation | undefined;
  if (!annotation) return;
  const measurement = measurementOf(annotation);
  if (!measurement || measurement.tool === "probe") return;
  state.last = measurement;
  state.lastAnnotation = annotation;
  say(formatMeasurement(measurement));
}

function formatMeasurement(m: Measurement): string {
  const n = (x: number | undefined, digits = 1) => (x === undefined || Number.isNaN(x) ? "—" : x.toFixed(digits));
  switch (m.tool) {
    case "length": return `长度 ${n(m.length)} mm`;
    case "angle": return `角度 ${n(m.angle)}°`;
    case "probe": return `CT值 ${n(m.hu, 0)} HU`;
    case "roi": return `均值 ${n(m.mean)} HU  标准差 ${n(m.stdDev)}  面积 ${n(m.area)} mm²`;
  }
}

// ------------------------------------------------------------------ series list

function renderSeriesList(): void {
  const list = $("#series");
  list.replaceChildren();
  state.series.forEach((series, index) => {
    const image = el("img", { alt: seriesLabel(series), width: "96", height: "96" });
    const button = el("button", { type: "button", class: "thumb", "data-series": String(index) }, image,
      el("span", {}, `${seriesLabel(series)} · ${series.instances.length} 张`));
    button.addEventListener("click", () => void openSeries(index));
    list.append(button);
    client.thumbnail(series).then((url) => (image.src = url)).catch(() => image.classList.add("missing"));
  });
}

async function openSeries(index: number): Promise<void> {
  const closed = shownSeries();
  state.assigned[state.active] = index;
  const still = shownSeries();
  for (const series of closed) if (!still.has(series)) closeSeries(series);
  if (state.mode === "mpr") return enterMpr();
  if (state.mode === "compare") return enterCompare();
  const series = state.series[index];
  const viewport = viewportAt(state.active);
  if (viewport) {
    state.engine!.disableElement(viewport.id);
    tools.ToolGroupManager.getToolGroup(STACK_GROUP)?.removeViewports(state.engine!.id, viewport.id);
  }
  await showStack(state.active, series, seriesLabel(series));
}

/** The series the cells show now (stack: the visible cells; compare and MPR: the active one). */
function shownSeries(): Set<SeriesInfo> {
  const count = state.mode === "stack" ? CELLS[state.layout] : 1;
  const index = (i: number) => state.assigned[state.mode === "stack" ? i : state.active] % state.series.length;
  return new Set(Array.from({ length: count }, (_, i) => state.series[index(i)]));
}

/** Free what a series closed on this page held: its bundle frames, its decoded images and its volume. */
function closeSeries(series: SeriesInfo): void {
  releaseSeries(client.seriesUrl(series));
  for (const volumeId of [`wanyingBundleVolume_${series.seriesUid}`, `cornerstoneStreamingImageVolume:${series.seriesUid}`]) {
    if (cache.getVolume(volumeId)) cache.removeVolumeLoadObject(volumeId);
  }
  for (const imageId of imageIdsOf(series)) {
    if (cache.getImageLoadObject(imageId)) cache.removeImageLoadObject(imageId, { force: true });
  }
}

// ------------------------------------------------------------------ start

function bindControls(): void {
  document.querySelectorAll<HTMLButtonElement>("[data-tool]").forEach((button) =>
    button.addEventListener("click", () => {
      state.tool = button.dataset.tool as PrimaryTool;
      applyTool();
    }));
  document.querySelectorAll<HTMLButtonElement>("[data-layout]").forEach((button) =>
    button.addEventListener("click", () => void enterStack(button.dataset.layout as Layout)));
  document.querySelectorAll<HTMLButtonElement>("[data-mode]").forEach((button) =>
    button.addEventListener("click", () => {
      const mode = button.dataset.mode as Mode;
      void (mode === "mpr" ? enterMpr() : mode === "compare" ? enterCompare() : enterStack());
    }));
  const presets = $("#preset") as HTMLSelectElement;
  for (const name of Object.keys(PRESETS)) presets.append(el("option", { value: name }, name));
  presets.addEventListener("change", () => {
    const preset = PRESETS[presets.value];
    const viewport = activeViewport();
    if (preset && viewport) setWindowLevel(viewport, preset);
    presets.value = "";
  });
  $("#invert").addEventListener("click", () => {
    const viewport = activeViewport();
    if (!viewport) return;
    viewport.setProperties({ invert: !viewport.getProperties().invert });
    viewport.render();
    $("#invert").setAttribute("aria-pressed", String(viewport.getProperties().invert));
  });
  $("#reset").addEventListener("click", () => {
    const viewport = activeViewport();
    if (!viewport) return;
    viewport.resetProperties();
    viewport.resetCamera();
    viewport.render();
  });
  $("#prev").addEventListener("click", () => scrollActive(-1));
  $("#next").addEventListener("click", () => scrollActive(1));
  $("#cine").addEventListener("click", toggleCine);
  $("#fps").addEventListener("input", () => {
    $("#fps-value").textContent = `${($("#fps") as HTMLInputElement).value} 帧/秒`;
    if (state.cine) {
      stopCine();
      toggleCine();
    }
  });
  $("#mip").addEventListener("click", toggleMip);
  $("#vr").addEventListener("click", () => void showVolumeRendering());
  $("#realign").addEventListener("click", () => {
    state.link?.register();
    say("已按当前层面重新对齐");
  });
  for (const type of [tools.Enums.Events.ANNOTATION_COMPLETED, tools.Enums.Events.ANNOTATION_MODIFIED]) {
    eventTarget.addEventListener(type, onAnnotation);
  }
  window.addEventListener("resize", () => state.engine?.resize(true, true));
}

async function findPrior(studyUid: string): Promise<string | undefined> {
  const explicit = params.get("prior");
  if (explicit) return explicit;
  const study = await client.study(studyUid);
  if (!study?.patientId) return undefined;
  const earlier = (await client.studiesOfPatient(study.patientId))
    .filter((s) => s.studyUid !== studyUid && (!study.date || s.date <= study.date))
    .sort((a, b) => b.date.localeCompare(a.date));
  return earlier[0]?.studyUid;
}

/** ``seriesOfStudy``: the study's series with their metadata, already requested by main.ts. */
export async function start(seriesOfStudy: Promise<SeriesInfo[]>): Promise<void> {
  bindControls();
  const studyUid = params.get("study");
  if (!studyUid) {
    say("请从检查列表打开影像（缺少 study 参数）", true);
    return;
  }
  say("正在加载影像…");
  performance.mark("viewer:start");
  const [engine, series] = await Promise.all([
    startCornerstone().then((e) => (performance.mark("viewer:cornerstone"), e)),
    seriesOfStudy.then((s) => (performance.mark("viewer:metadata"), s)),
  ]);
  state.engine = engine;
  state.series = series;
  configureLabels((world) => {
    const viewport = activeViewport();
    return viewport ? valueAtWorld(viewport, world as Types.Point3) : null;
  });
  if (series.length === 0) {
    say("该检查没有可显示的影像", true);
    return;
  }
  installHook(hook);
  const wanted = series.findIndex((s) => s.seriesUid === params.get("series")); // the study list links to one
  if (wanted > 0) {
    const other = state.assigned.indexOf(wanted);
    if (other >= 0) state.assigned[other] = state.assigned[0];
    state.assigned[0] = wanted;
  }
  const mode = params.get("mode");
  if (mode === "mpr") await enterMpr();
  else await enterStack((params.get("layout") as Layout) ?? "1x1");
  renderSeriesList(); // thumbnails after the first image: they would compete with it for the server
  if (state.mode === "stack") {
    elements.forEach((element, i) => viewportAt(i) && tools.utilities.stackPrefetch.enable(element));
  }
  say(`共 ${series.length} 个序列`);
  const priorUid = await findPrior(studyUid).catch(() => undefined);
  if (priorUid) state.priorSeries = await client.seriesOf(priorUid).catch(() => []);
  $("[data-mode='compare']").toggleAttribute("disabled", state.priorSeries.length === 0);
  document.body.dataset.ready = "1";
  if (mode === "compare") await enterCompare();
}

// ------------------------------------------------------------------ test hook

function cellIndexOf(clientX: number, clientY: number): number {
  return elements.findIndex((element, i) => {
    const r = element.getBoundingClientRect();
    return !cells[i].hidden && clientX >= r.left && clientX < r.right && clientY >= r.top && clientY < r.bottom;
  });
}

function worldToClient(index: number, world: Types.Point3): [number, number] {
  const viewport = viewportAt(index)!;
  const [x, y] = viewport.worldToCanvas(world);
  const rect = elements[index].getBoundingClientRect();
  return [rect.left + x, rect.top + y];
}

const hook: ViewerHook = {
  mode: () => state.mode,
  layout: () => state.layout,
  viewportCount: () => state.engine?.getViewports().length ?? 0,
  sliceIndex: (i = state.active) => viewportAt(i)?.getCurrentImageIdIndex() ?? -1,
  sliceCount: (i = state.active) => viewportAt(i)?.getNumberOfSlices?.() ?? 0,
  windowLevel: (i = state.active) => {
    const viewport = viewportAt(i);
    return viewport ? windowLevelOf(viewport) : null;
  },
  zoom: (i = state.active) => viewportAt(i)?.getZoom() ?? 0,
  inverted: (i = state.active) => Boolean(viewportAt(i)?.getProperties()?.invert),
  slab: (i = state.active) => {
    const viewport = viewportAt(i);
    return viewport ? viewportSlab(viewport) : 0;
  },
  lastMeasurement: () => (state.lastAnnotation && measurementOf(state.lastAnnotation)) ?? state.last ?? null,
  huAt: (x, y) => {
    const index = cellIndexOf(x, y);
    return index < 0 ? null : valueAtClient(index, x, y);
  },
  imageToClient: (i, column, row) => {
    const imageId = (viewportAt(i) as Types.IStackViewport).getCurrentImageId();
    return worldToClient(i, csUtils.imageToWorldCoords(imageId, [column, row]));
  },
  worldToClient: (i, world) => worldToClient(i, world as Types.Point3),
  cinePlaying: () => state.cine,
  comparisonOffsetMm: () => state.link?.offsetMm ?? null,
  frameSources: () => ({ ...frameSources }),
  imageValues: (i = state.active) => {
    const viewport = viewportAt(i);
    const imageId = viewport instanceof StackViewport ? viewport.getCurrentImageId() : undefined;
    const image = imageId ? cache.getImage(imageId) : undefined;
    if (!image) return null;
    const stored = Array.from(image.getPixelData() as ArrayLike<number>);
    if (image.preScale?.scaled) return stored;
    return stored.map((v) => v * (image.slope ?? 1) + (image.intercept ?? 0));
  },
  timings: () => ({ ...timings }),
  memory: () => ({ bundleBytes: bundleBytes(), cacheBytes: cache.getCacheSize() }),
};

export function failed(error: unknown): void {
  console.error(error);
  say(`影像加载失败：${errorMessage(error)}`, true);
}

