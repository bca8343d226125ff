// Load timings of this page (ms since navigation start, performance.now()), shared by main.ts (the first image is
// drawn there, before Cornerstone) and app.ts; reported by window.__viewer.timings() to tests and bench/viewer_load.
export const timings = {
  firstImageMs: null as number | null,
  mprReadyMs: null as number | null,
  vrReadyMs: null as number | null,
};

/** Record ``name`` at the next animation frame: the frame that presents what was just drawn. */
export function markPresented(name: keyof typeof timings, done?: () => void): void {
  requestAnimationFrame(() => {
    if (timings[name] === null) timings[name] = Math.round(performance.now());
    done?.();
  });
}
