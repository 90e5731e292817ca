import { defineConfig } from "vite";

// The build goes where `cargo xtask pwa` tells it (SQM_WEB_OUT), and
// `sqm serve --web DIR` serves it; files under assets/ are named by hash.
export default defineConfig({
  build: {
    outDir: process.env.SQM_WEB_OUT ?? "dist",
    emptyOutDir: true,
    target: "es2022",
  },
  oxc: {
    jsx: { runtime: "automatic", importSource: "preact" },
  },
});
