// Cornerstone3D start-up: rendering, the DICOMweb image loader (bearer token on every request) and the tools.
import { Enums, init as coreInit, imageLoader, RenderingEngine, type Types } from "@cornerstonejs/core";
import dicomImageLoader from "@cornerstonejs/dicom-image-loader";
import * as tools from "@cornerstonejs/tools";
import { token } from "../common/api";
import { bundleFrame, frameSources } from "./bundle";

const { ToolGroupManager, Enums: ToolEnums } = tools;
const { MouseBindings } = ToolEnums;

export const STACK_GROUP = "stack";
export const MPR_GROUP = "mpr";
export const VR_GROUP = "vr";

/** Toolbar tools that take the primary button (and one finger). */
export const PRIMARY_TOOLS = {
  windowLevel: tools.WindowLevelTool.toolName,
  pan: tools.PanTool.toolName,
  zoom: tools.ZoomTool.toolName,
  scroll: tools.StackScrollTool.toolName,
  length: tools.LengthTool.toolName,
  angle: tools.AngleTool.toolName,
  probe: tools.ProbeTool.toolName,
  roi: tools.EllipticalROITool.toolName,
} as const;
export type PrimaryTool = keyof typeof PRIMARY_TOOLS;

export async function startCornerstone(): Promise<RenderingEngine> {
  await coreInit();
  dicomImageLoader.init({
    maxWebWorkers: Math.max(1, Math.min(4, navigator.hardwareConcurrency ?? 2)),
    beforeSend: () => {
      const bearer = token();
      return bearer ? { Authorization: `Bearer ${bearer}` } : {};
    },
  });
  imageLoader.registerImageLoader("wadors", loadFrame as unknown as Types.ImageLoaderFn);
  tools.init();
  for (const Tool of [
    tools.WindowLevelTool, tools.PanTool, tools.ZoomTool, tools.StackScrollTool, tools.LengthTool,
    tools.AngleTool, tools.ProbeTool, tools.EllipticalROITool, tools.TrackballRotateTool,
  ]) {
    tools.addTool(Tool);
  }
  for (const name of [STACK_GROUP, MPR_GROUP]) {
    const group = ToolGroupManager.createToolGroup(name)!;
    for (const toolName of Object.values(PRIMARY_TOOLS)) group.addTool(toolName);
    group.setToolActive(tools.StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
    setPrimaryTool(group, "windowLevel");
  }
  const vr = ToolGroupManager.createToolGroup(VR_GROUP)!;
  vr.addTool(tools.TrackballRotateTool.toolName);
  vr.addTool(tools.ZoomTool.toolName);
  vr.addTool(tools.PanTool.toolName);
  vr.setToolActive(tools.TrackballRotateTool.toolName, { bindings: [{ mouseButton: MouseBindings.Primary }] });
  vr.setToolActive(tools.ZoomTool.toolName, {
    bindings: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }],
  });
  vr.setToolActive(tools.PanTool.toolName, { bindings: [{ mouseButton: MouseBindings.Auxiliary }] });
  return new RenderingEngine("wanying-viewer");
}

/** The WADO-RS image loader, fed from the series bundle when the server has one (see bundle.ts): the same image
 * ids, metadata and ``createImage`` (rescale, volume target buffers) as the network path, only the bytes differ. */
function loadFrame(imageId: string, options: Record<string, unknown> = {}) {
  const network = () => {
    frameSources.wadors += 1;
    return dicomImageLoader.wadors.loadImage(imageId, options).promise;
  };
  const promise = bundleFrame(imageId).then((frame) => {
    if (!frame) return network();
    frameSources.bundle += 1;
    return dicomImageLoader.createImage(imageId, frame.bytes, frame.transferSyntax, options).then((image) => {
      Object.assign(image, {
        imageQualityStatus: Enums.ImageQualityStatus.FULL_RESOLUTION, transferSyntaxUID: frame.transferSyntax,
      });
      return image;
    });
  });
  return { promise, cancelFn: undefined };
}

/** The chosen tool on the primary button / one finger; zoom stays on the right button and two fingers, pan on
 * the middle button and three fingers, scrolling on the wheel. Annotation tools not chosen stay visible. */
export function setPrimaryTool(group: tools.Types.IToolGroup, chosen: PrimaryTool): void {
  const name = PRIMARY_TOOLS[chosen];
  for (const other of Object.values(PRIMARY_TOOLS)) {
    if (other === name || other === tools.StackScrollTool.toolName) continue;
    group.setToolPassive(other);
  }
  const extra: Record<string, { mouseButton?: number; numTouchPoints?: number }[]> = {
    [tools.ZoomTool.toolName]: [{ mouseButton: MouseBindings.Secondary }, { numTouchPoints: 2 }],
    [tools.PanTool.toolName]: [{ mouseButton: MouseBindings.Auxiliary }, { numTouchPoints: 3 }],
  };
  for (const [toolName, bindings] of Object.entries(extra)) {
    if (toolName !== name) group.setToolActive(toolName, { bindings });
  }
  const wheel = name === tools.StackScrollTool.toolName ? [{ mouseButton: MouseBindings.Wheel }] : [];
  group.setToolActive(name, {
    bindings: [{ mouseButton: MouseBindings.Primary }, ...(extra[name] ?? []), ...wheel],
  });
  if (name !== tools.StackScrollTool.toolName) {
    group.setToolActive(tools.StackScrollTool.toolName, { bindings: [{ mouseButton: MouseBindings.Wheel }] });
  }
}

type Stats = Record<string, number | string | undefined>;
const fixed = (value: unknown, digits = 1) => (typeof value === "number" ? value.toFixed(digits) : "—");

/** Chinese labels on the drawn measurements; the probe shows the value the viewer reads itself (``probeValue``). */
export function configureLabels(probeValue: (world: [number, number, number]) => number | null): void {
  const labels: Record<string, (data: { cachedStats?: Record<string, Stats>; handles?: { points?: number[][] } },
    targetId: string) => string[] | undefined> = {
    [tools.EllipticalROITool.toolName]: (data, targetId) => {
      const stats = data.cachedStats?.[targetId] ?? {};
      return [`面积 ${fixed(stats.area)} mm²`, `均值 ${fixed(stats.mean)} HU`, `标准差 ${fixed(stats.stdDev)}`,
        `最大 ${fixed(stats.max, 0)} 最小 ${fixed(stats.min, 0)}`];
    },
    [tools.ProbeTool.toolName]: (data) => {
      const point = data.handles?.points?.[0];
      const value = point ? probeValue(point as [number, number, number]) : null;
      return value === null ? undefined : [`CT值 ${Math.round(value)} HU`];
    },
  };
  for (const name of [STACK_GROUP, MPR_GROUP]) {
    const group = ToolGroupManager.getToolGroup(name)!;
    for (const [toolName, getTextLines] of Object.entries(labels)) {
      group.setToolConfiguration(toolName, { getTextLines });
    }
  }
}
