// Side-by-side comparison with a prior exam: scroll, W/L, zoom and pan follow each other. Cornerstone 5.14's slice
// synchroniser fails across different FrameOfReferenceUIDs (two exams never share one), so the viewer registers
// the offset between the two stacks itself: the slice positions (mm along the normal) when the link is made.
import { Enums, type Types } from "@cornerstonejs/core";

export interface LinkedStack {
  viewport: Types.IStackViewport;
  positions: number[]; // slice position (mm) of each image, in stack order
}

export class ComparisonLink {
  private offset = 0; // prior position minus current position, mm
  private busy = false;
  private readonly listeners: [HTMLDivElement, string, EventListener][] = [];

  constructor(private readonly a: LinkedStack, private readonly b: LinkedStack) {
    this.register();
    for (const [from, to] of [[a, b], [b, a]] as const) {
      this.listen(from, Enums.Events.STACK_NEW_IMAGE, () => this.follow(from, to));
      this.listen(from, Enums.Events.VOI_MODIFIED, () => this.copyWindow(from, to));
      this.listen(from, Enums.Events.CAMERA_MODIFIED, () => this.copyCamera(from, to));
    }
  }

  /** Take the slices shown now as the same anatomical level. */
  register(): void {
    this.offset = this.position(this.b) - this.position(this.a);
  }

  get offsetMm(): number {
    return this.offset;
  }

  dispose(): void {
    for (const [element, type, listener] of this.listeners) element.removeEventListener(type, listener);
    this.listeners.length = 0;
  }

  private listen(stack: LinkedStack, type: string, handler: () => void): void {
    const listener = () => {
      if (this.busy) return;
      this.busy = true;
      try {
        handler();
      } finally {
        this.busy = false;
      }
    };
    stack.viewport.element.addEventListener(type, listener);
    this.listeners.push([stack.viewport.element, type, listener]);
  }

  private position(stack: LinkedStack): number {
    return stack.positions[stack.viewport.getCurrentImageIdIndex()] ?? 0;
  }

  private follow(from: LinkedStack, to: LinkedStack): void {
    const sign = from === this.a ? 1 : -1;
    const target = this.position(from) + sign * this.offset;
    let best = 0;
    to.positions.forEach((p, i) => {
      if (Math.abs(p - target) < Math.abs(to.positions[best] - target)) best = i;
    });
    if (best !== to.viewport.getCurrentImageIdIndex()) void to.viewport.setImageIdIndex(best);
  }

  private copyWindow(from: LinkedStack, to: LinkedStack): void {
    const range = from.viewport.getProperties()?.voiRange;
    if (!range) return;
    to.viewport.setProperties({ voiRange: { ...range } });
    to.viewport.render();
  }

  /** Zoom, and pan as a shift (mm) from each image's own centre: the two exams' coordinates differ. */
  private copyCamera(from: LinkedStack, to: LinkedStack): void {
    const zoom = from.viewport.getZoom();
    const pan = from.viewport.getPan();
    const [x, y] = to.viewport.getPan();
    const zoomed = Math.abs(zoom - to.viewport.getZoom()) >= 1e-6;
    const panned = Math.abs(pan[0] - x) >= 1e-3 || Math.abs(pan[1] - y) >= 1e-3;
    if (!zoomed && !panned) return;
    if (zoomed) to.viewport.setZoom(zoom);
    if (panned) to.viewport.setPan([pan[0], pan[1]]);
    to.viewport.render();
  }
}
