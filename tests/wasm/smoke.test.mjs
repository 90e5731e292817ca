// Smoke test: the Node.js build of pwa/sync-wasm loads and runs, automerge
// included. `cargo xtask test` builds the module and sets SQM_WASM_PKG.
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

test("a document made in wasm saves and loads back with the same heads", () => {
  const actor = "5a510100000000000000000000000001";
  const id = wasm.new_document_id(1768262400000, new Uint8Array(10).fill(7));
  const author = JSON.stringify({
    user: "k.iyer",
    grants: [{ unit: "DEMO-I", role: "auditor", from: "2025-04-01" }],
    audits: { [id]: "lead" },
    planned: {
      [id]: { unit: "DEMO-I", number: "IA/DEMO-I/2025-26/009", template_version: 2, lead: "k.iyer" },
    },
    actors: [actor],
  });
  const device = new wasm.Device(actor, author);
  device.edit(
    id,
    JSON.stringify({
      edit: "create_audit", unit: "DEMO-I", number: "IA/DEMO-I/2025-26/009", scope: ["P03"],
      template_version: 2, lead: "k.iyer", team: ["k.iyer"], start: "2026-01-13",
    }),
    "2026-01-15T10:00:00Z",
  );
  const bytes = device.save(id);
  assert.ok(bytes.length > 0);
  const again = new wasm.Device(actor, author);
  again.load(id, bytes);
  assert.deepEqual(again.heads(id), device.heads(id));
  assert.equal(JSON.parse(again.audit_view(id)).header.number, "IA/DEMO-I/2025-26/009");
  assert.throws(() => again.load(id, new Uint8Array([1, 2, 3])), /not a saved document/);
});
