// Multi-page build: every page is an HTML file at web/ root listed in PAGES; they share src/common/.
// Served by the API at /app/ (api/app.py mounts web/dist), so asset URLs start there.
import { resolve } from "node:path";
import { defineConfig } from "vite";

const PAGES = ["index", "interpret", "viewer", "plugin", "qc"];

// Cornerstone3D 5.14 (viewer): its DICOM loader runs codecs in ES-module workers; pre-bundling the loader breaks
// them, so it is excluded and its codecs are pre-bundled instead.
const CORNERSTONE_CODECS = [
  "@cornerstonejs/codec-charls",
  "@cornerstonejs/codec-libjpeg-turbo-8bit",
  "@cornerstonejs/codec-openjpeg",
  "@cornerstonejs/codec-openjph",
  "dicom-parser",
];

export default defineConfig({
  base: "/app/",
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
