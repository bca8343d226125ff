// Multi-page build: every page is an HTML file at web/ root listed in PAGES; they share src/common/.
// Served by the API at /app/ (api/app.py mounts web/dist), so asset URLs start there.
import { resolve } from "node:path";
import { defineConfig } from "vite";

const PAGES = ["index", "interpret"];

export default defineConfig({
  base: "/app/",
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
