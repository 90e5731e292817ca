// Pipeline smoke test: the Node.js build of pwa/sync-wasm loads and runs,
// automerge included. `cargo xtask test` builds the module and sets SQM_WASM_PKG.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const pkgDir = process.env.SQM_WASM_PKG;
if (!pkgDir) {
  throw new Error(
    "SQM_WASM_PKG is not set: it must name the directory holding the nodejs-target " +
      "wasm-bindgen output of sync-wasm. Run these tests with `cargo xtask test`.",
  );
}
const require = createRequire(import.meta.url);
const wasm = require(path.resolve(pkgDir, "sync_wasm.js"));

/** The `version` under [workspace.package] in the root Cargo.toml. */
function workspaceVersion() {
  const manifest = readFileSync(new URL("../../Cargo.toml", import.meta.url), "utf8");
  const section = manifest.split(/^\[workspace\.package\]\s*$/m)[1] ?? "";
  const version = section.split(/^\[/m)[0].match(/^version\s*=\s*"([^"]+)"/m);
  assert.ok(version, "root Cargo.toml has no [workspace.package] version");
  return version[1];
}

test("core_version is the workspace version", () => {
  assert.equal(wasm.core_version(), workspaceVersion());
});

test("an automerge document saves and reloads inside wasm", () => {
  const bytes = wasm.new_document_roundtrip();
  assert.equal(typeof bytes, "number");
  assert.ok(bytes > 0, `saved document is ${bytes} bytes`);
});
