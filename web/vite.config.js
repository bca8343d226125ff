// Multi-page build: every page is an HTML file at web/ root listed in PAGES; they share src/common/.
// Served by the API at /app/ (api/app.py mounts web/dist), so asset URLs start there.
import { resolve } from "node:path";
import { defineConfig } from "vite";

const PAGES = ["index", "interpret", "viewer", "plugin", "qc", "report", "recognition", "studies"];

// Cornerstone3D 5.14 (viewer): its DICOM loader runs codecs in ES-module workers; pre-bundling the loader breaks
// them, so it is excluded and its codecs are pre-bundled instead.
const CORNERSTONE_CODECS = [
  "@cornerstonejs/codec-charls",
  "@cornerstonejs/codec-libjpeg-turbo-8bit",
  "@cornerstonejs/codec-openjpeg",
  "@cornerstonejs/codec-openjph",
  "dicom-parser",
];

const BASE = "/app/";

/** viewer.html gets a modulepreload link for the chunk main.ts imports lazily (app.ts: Cornerstone, ~4 MB): the
 * browser fetches and compiles it while main.ts draws the first image, and evaluates it only when imported. */
function preloadViewerApp() {
  return {
    name: "wanying-preload-viewer-app",
    apply: "build",
    transformIndexHtml: {
      order: "post",
      handler(html, ctx) {
        if (!ctx.bundle || !ctx.filename.endsWith("viewer.html")) return html;
        const app = Object.values(ctx.bundle).find(
          (c) => c.type === "chunk" && c.facadeModuleId?.endsWith("/src/viewer/app.ts"));
        if (!app) throw new Error("viewer: no app.ts chunk to preload");
        return [{ tag: "link", attrs: { rel: "modulepreload", crossorigin: "", href: BASE + app.fileName },
          injectTo: "head" }];
      },
    },
  };
}

export default defineConfig({
  base: BASE,
  plugins: [preloadViewerApp()],
  optimizeDeps: { exclude: ["@cornerstonejs/dicom-image-loader"], include: CORNERSTONE_CODECS },
  worker: { format: "es" },
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    rollupOptions: {
      input: Object.fromEntries(PAGES.map((name) => [name, resolve(import.meta.dirname, `${name}.html`)])),
    },
  },
  server: {
    host: "127.0.0.1",
    // `npm run dev`: the API runs beside it (wanying api); page calls to /api go there.
    proxy: { "/api": "http://127.0.0.1:8420" },
  },
});
