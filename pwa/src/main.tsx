import { render } from "preact";
import init, { core_version } from "../generated/sync-wasm/sync_wasm.js";
import wasmUrl from "../generated/sync-wasm/sync_wasm_bg.wasm?url";
import { App, type Boot, type Live } from "./app";
import { lang } from "./i18n";
import * as store from "./store";
import { FORMAT } from "./snapshot";
import { Sync } from "./sync";
import "./style.css";

performance.mark("sqm:main");
document.documentElement.lang = lang.get();

/** Resolves once what is rendered now is on the screen. */
const painted = () => new Promise((done) => requestAnimationFrame(() => setTimeout(done)));

/**
 * Everything the first screen needs, before it is drawn. The wasm build of
 * sync-core (every rule the screens apply runs in it) compiles while the
 * tablet's storage is read; then the signed-in user's documents are loaded
 * into their device. An audit named by the address, kept with its screen,
 * is drawn at once from that snapshot, the wasm compiles after it is on the
 * screen, and the audit goes live when the device is ready.
 */
async function boot(): Promise<Boot> {
  const audit = /^#\/audit\/([0-9a-f-]+)$/.exec(location.hash)?.[1];
  const first = store.opening(audit).catch((e) => {
    // A tablet that cannot read its storage still opens, on the sign-in screen.
    console.warn("the tablet's storage could not be read", e);
    return {} as Awaited<ReturnType<typeof store.opening>>;
  });
  const compile = () => init({ module_or_path: wasmUrl });
  const early = audit ? undefined : compile();
  const { session, reference, snapshot } = await first;
  performance.mark("sqm:storage-read");
  const kept = audit && snapshot?.format === FORMAT;
  // With a kept screen to draw, the wasm compiles once it is painted: on
  // two cores, compiling it alongside slows the first screen by a third.
  const wasm = early ?? (kept ? painted().then(compile) : compile());
  const docs = session && reference ? store.docs.of(session.user) : Promise.resolve([]);
  const live: Promise<Live> = Promise.all([wasm, docs]).then(async ([, docs]) => {
    performance.mark("sqm:wasm-ready");
    // The snapshot, if drawn, is painted before the documents are loaded.
    await painted();
    const core = core_version();
    if (!session || !reference) return { core };
    try {
      return { core, sync: await Sync.start(session, reference.value, docs) };
    } catch (e) {
      // The screens start it again once the reference data is fresh.
      console.warn("sync could not start", e);
      return { core };
    }
  });
  if (kept) return { session, reference, snapshot: { id: audit, ...snapshot }, live };
  return { session, reference, ...(await live) };
}

render(<App boot={await boot()} />, document.getElementById("app")!);
// The app shell kept on the tablet: once opened, the app starts with no network.
if ("serviceWorker" in navigator) {
  navigator.serviceWorker.register("/sw.js").catch(() => {
    // Without a service worker the app still works while online.
  });
}
