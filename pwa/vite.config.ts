import { defineConfig, type Plugin } from "vite";

/** Writes precache.json: every file of the build, for the service worker to keep. */
function precache(): Plugin {
  return {
    name: "sqm-precache",
    generateBundle(_options, bundle) {
      const files = ["/manifest.webmanifest", "/icon.svg", ...Object.keys(bundle).map((f) => `/${f}`)];
      this.emitFile({ type: "asset", fileName: "precache.json", source: JSON.stringify(files.sort()) });
    },
  };
}

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
  plugins: [precache()],
});
