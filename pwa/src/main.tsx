import { render } from "preact";
import init, { core_version } from "../generated/sync-wasm/sync_wasm.js";
import wasmUrl from "../generated/sync-wasm/sync_wasm_bg.wasm?url";
import { App } from "./app";
import { lang } from "./i18n";
import { preload } from "./store";
import "./style.css";

document.documentElement.lang = lang.get();
// The tablet's own data is read while the wasm compiles.
preload();
// Every rule the screens apply runs in the wasm build of sync-core.
await init({ module_or_path: wasmUrl });
performance.mark("sqm:wasm-ready");
render(<App core={core_version()} />, document.getElementById("app")!);
// The app shell kept on the tablet: once opened, the app starts with no network.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {
    // Without a service worker the app still works while online.
  });
}
