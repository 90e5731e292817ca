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
      [id]: { unit: "DEMO-I", number: "IA/DEMO-I/2025-26/009", template_version: 2, lead: "k.iyer",
        checklist: { version: 2, items: {} } },
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

test("an NC keeps its provisional number; its owner attaches implementation evidence and marks it implemented only then", () => {
  const now = "2026-01-15T10:00:00Z";
  const audit = wasm.new_document_id(1768262400000, new Uint8Array(10).fill(8));
  const nc = wasm.new_document_id(1768262400000, new Uint8Array(10).fill(9));
  const planned = {
    [audit]: { unit: "DEMO-I", number: "IA/DEMO-I/2025-26/010", template_version: 2, lead: "k.iyer",
        checklist: { version: 2, items: {} } },
  };
  const leadActor = "5a510100000000000000000000000002";
  const lead = new wasm.Device(leadActor, JSON.stringify({
    user: "k.iyer", grants: [{ unit: "DEMO-I", role: "auditor", from: "2025-04-01" }],
    audits: { [audit]: "lead" }, planned, actors: [leadActor],
  }));
  const edit = (device, id, e) => device.edit(id, JSON.stringify(e), now);
  edit(lead, audit, {
    edit: "create_audit", unit: "DEMO-I", number: "IA/DEMO-I/2025-26/010", scope: ["P03"],
    template_version: 2, lead: "k.iyer", team: ["k.iyer"], start: "2026-01-13",
  });
  edit(lead, audit, { edit: "move", move: "start" });
  edit(lead, audit, {
    edit: "put_finding", id: "f-01", class: "minor", clause: "3.2.1.3", process: "P03",
    text: "Amendment approved in 19 days.",
  });
  edit(lead, nc, {
    edit: "create_nc", unit: "DEMO-I", audit, finding: "f-01", process: "P03", clause: "3.2.1.3",
    class: "minor", raised_on: "2026-01-15", description: "Amendment beyond 15 days.",
    provisional: "D-IYER-01",
  });
  edit(lead, nc, { edit: "move", move: "raise" });
  // Open: the response was due 7 days after raising (22-01-2026).
  const open = JSON.parse(lead.nc_view(nc, "2026-02-01"));
  assert.deepEqual([open.due, open.days_overdue, open.escalation], ["2026-01-22", 10, "L1"]);
  assert.equal(JSON.parse(lead.nc_view(nc, "2026-01-22")).days_overdue, null);
  // A tablet whose reference data gives Demo-I 10 days counts from them.
  const nodalActor = "5a510100000000000000000000000004";
  const nodal = new wasm.Device(nodalActor, JSON.stringify({
    user: "a.rao", grants: [{ unit: "DEMO-I", role: "nodal_officer", from: "2025-04-01" }],
    actors: [nodalActor],
    due_rules: { "DEMO-I": {
      response_days_major: 10, response_days_minor: 10, action_days_major: 30, action_days_minor: 60,
    } },
  }));
  nodal.load(nc, lead.save(nc));
  const theirs = JSON.parse(nodal.nc_view(nc, "2026-02-01"));
  assert.deepEqual([theirs.due, theirs.days_overdue], ["2026-01-25", 7]);
  // An extension to 24-01-2026 is later than the default's date, not the unit's.
  const early = { edit: "extend", of: "response", due: "2026-01-24", justification: "Officer on tour" };
  assert.throws(() => edit(nodal, nc, early), /after the one in force, 25-01-2026/);

  const ownerActor = "5a510100000000000000000000000003";
  const owner = new wasm.Device(ownerActor, JSON.stringify({
    user: "ac.div2", grants: [{ unit: "DEMO-I", role: "process_owner", from: "2025-04-01" }],
    processes: [["DEMO-I", "P03"]], actors: [ownerActor],
  }));
  owner.load(nc, lead.save(nc));
  const field = JSON.stringify({ field: "nc_implementation_evidence" });
  // Implementation evidence is the owner's, and only once the plan is accepted.
  const ownerMay = JSON.parse(owner.may_edit(nc, field, "2026-01-15"));
  assert.deepEqual([ownerMay.ok, ownerMay.rule], [false, "nc.step"]);
  const leadMay = JSON.parse(lead.may_edit(nc, field, "2026-01-15"));
  assert.equal(leadMay.ok, false);
  assert.equal(leadMay.rule, "nc.owner_fields");

  edit(owner, nc, { edit: "set_correction", text: "Pending amendments cleared." });
  edit(owner, nc, { edit: "set_root_cause", text: "No daily ageing report." });
  edit(owner, nc, {
    edit: "put_action", id: "a-1", text: "Daily ageing report", owner: "Supdt", target: "2026-02-15",
    done_on: "2026-01-15",
  });
  edit(owner, nc, { edit: "move", move: "submit_response" });
  lead.merge(nc, owner.save(nc));
  edit(lead, nc, { edit: "move", move: "accept_plan" });
  owner.merge(nc, lead.save(nc));
  assert.deepEqual(JSON.parse(owner.may_edit(nc, field, "2026-01-15")), { ok: true });
  assert.throws(
    () => edit(owner, nc, { edit: "move", move: "mark_implemented" }),
    /implementation evidence/,
  );
  const scan = {
    sha256: "ab".repeat(32), name: "ageing-report.pdf", mime: "application/pdf", size: 48213,
  };
  assert.throws(
    () => edit(lead, nc, { edit: "attach_nc_evidence", of: "implementation", file: scan }),
    /implementation evidence/,
  );
  edit(owner, nc, { edit: "attach_nc_evidence", of: "implementation", file: scan });
  edit(owner, nc, { edit: "move", move: "mark_implemented" });
  const view = JSON.parse(owner.nc_view(nc, "2026-01-15"));
  assert.equal(view.state, "implemented");
  // Until the server's number arrives, the tablet's own is shown.
  assert.equal(view.provisional, "D-IYER-01");
  assert.equal(view.number, null);
  assert.deepEqual(view.implementation_evidence, [
    { ...scan, taken_at: null, by: "ac.div2", at: "2026-01-15T10:00:00Z" },
  ]);
  assert.deepEqual(view.verification_evidence, []);
  assert.deepEqual(view.contested_verification, []);
  assert.deepEqual(view.contested_text, {});
  assert.deepEqual(view.contested_actions, {});
});

test("the lead's tablet shows what keeps an audit from review and refuses the move until it is done", () => {
  const now = "2026-01-15T10:00:00Z";
  const audit = wasm.new_document_id(1768262400000, new Uint8Array(10).fill(11));
  const actor = "5a510100000000000000000000000005";
  // The checklist as the server resolves it for a P03 audit (bundle's author.planned).
  const checklist = {
    version: 2,
    items: {
      "sd.timeliness@P03": { answer: "cpna", evidence: true, required: "always" },
      "sd.late_cases@P03": {
        answer: "number", evidence: false,
        required: { when: ["sd.timeliness@P03", ["partly", "not_conform"]] },
      },
      "gen.remarks": { answer: "text", evidence: false, required: "optional" },
    },
  };
  const lead = new wasm.Device(actor, JSON.stringify({
    user: "k.iyer", grants: [{ unit: "DEMO-I", role: "auditor", from: "2025-04-01" }],
    audits: { [audit]: "lead" },
    planned: { [audit]: {
      unit: "DEMO-I", number: "IA/DEMO-I/2025-26/011", template_version: 2, lead: "k.iyer", checklist,
    } },
    actors: [actor],
  }));
  const edit = (e) => lead.edit(audit, JSON.stringify(e), now);
  edit({
    edit: "create_audit", unit: "DEMO-I", number: "IA/DEMO-I/2025-26/011", scope: ["P03"],
    template_version: 2, lead: "k.iyer", team: ["k.iyer"], start: "2026-01-13",
  });
  edit({ edit: "move", move: "start" });
  const gaps = () => JSON.parse(lead.audit_view(audit)).gaps;
  assert.deepEqual(gaps(), [{ key: "sd.timeliness@P03", kind: "unanswered" }]);
  const submit = { edit: "move", move: "submit_for_review" };
  assert.throws(() => edit(submit), /sd\.timeliness@P03 is not answered\./);
  // Answered short with nothing to show: the late count is now required, and evidence.
  edit({ edit: "set_response", key: "sd.timeliness@P03", answer: { cpna: "partly" } });
  assert.deepEqual(gaps(), [
    { key: "sd.late_cases@P03", kind: "unanswered" },
    { key: "sd.timeliness@P03", kind: "needs_evidence" },
  ]);
  assert.throws(
    () => edit(submit),
    /sd\.late_cases@P03 is not answered; sd\.timeliness@P03 needs objective evidence\./,
  );
  edit({
    edit: "set_response", key: "sd.timeliness@P03", answer: { cpna: "partly" },
    note: "2 of 10 amendments approved after 15 days.",
  });
  edit({ edit: "set_response", key: "sd.late_cases@P03", answer: { number: 2 } });
  assert.deepEqual(gaps(), []);
  edit(submit);
  assert.equal(JSON.parse(lead.audit_view(audit)).state, "in_review");
  // A tablet that does not know the audit's checklist says so, rather than "nothing missing".
  const raoActor = "5a510100000000000000000000000006";
  const other = new wasm.Device(raoActor, JSON.stringify({ user: "a.rao", actors: [raoActor] }));
  other.load(audit, lead.save(audit));
  assert.equal(JSON.parse(other.audit_view(audit)).gaps, null);
});

test("an NC on a clause no process carries is answered by the unit's nodal officer, as on the server", () => {
  const now = "2026-01-15T10:00:00Z";
  const audit = wasm.new_document_id(1768262400000, new Uint8Array(10).fill(18));
  const nc = wasm.new_document_id(1768262400000, new Uint8Array(10).fill(19));
  const planned = {
    [audit]: { unit: "DEMO-I", number: "IA/DEMO-I/2025-26/011", template_version: 2, lead: "k.iyer",
        checklist: { version: 2, items: {} } },
  };
  const leadActor = "5a510100000000000000000000000012";
  const lead = new wasm.Device(leadActor, JSON.stringify({
    user: "k.iyer", grants: [{ unit: "DEMO-I", role: "auditor", from: "2025-04-01" }],
    audits: { [audit]: "lead" }, planned, actors: [leadActor],
  }));
  const edit = (device, id, e) => device.edit(id, JSON.stringify(e), now);
  edit(lead, audit, {
    edit: "create_audit", unit: "DEMO-I", number: "IA/DEMO-I/2025-26/011", scope: ["3.4"],
    template_version: 2, lead: "k.iyer", team: ["k.iyer"], start: "2026-01-13",
  });
  // No process: the field is left out.
  edit(lead, nc, {
    edit: "create_nc", unit: "DEMO-I", audit, finding: "f-14", clause: "3.4", class: "minor",
    raised_on: "2026-01-14", description: "MR minutes lack decisions on resources.",
    provisional: "D-IYER-01",
  });
  edit(lead, nc, { edit: "move", move: "raise" });
  assert.equal(JSON.parse(lead.nc_view(nc, "2026-01-15")).process, null);

  const device = (user, actor, grant, extra = {}) =>
    new wasm.Device(actor, JSON.stringify({
      user, grants: [{ unit: "DEMO-I", role: grant, from: "2025-04-01" }], actors: [actor], ...extra,
    }));
  const nodal = device("a.rao", "5a510100000000000000000000000014", "nodal_officer");
  const owner = device("ac.div2", "5a510100000000000000000000000013", "process_owner", {
    processes: [["DEMO-I", "P03"]],
  });
  const owners = JSON.stringify({ field: "nc_owner_fields" });
  for (const d of [nodal, owner]) d.load(nc, lead.save(nc));
  assert.deepEqual(JSON.parse(nodal.may_edit(nc, owners, "2026-01-15")), { ok: true });
  assert.equal(JSON.parse(owner.may_edit(nc, owners, "2026-01-15")).rule, "nc.owner_fields");
  assert.throws(() => edit(owner, nc, { edit: "set_correction", text: "Not mine." }), /nc\.owner_fields/);
  edit(nodal, nc, { edit: "set_correction", text: "Resources taken up at MR-2." });
  edit(nodal, nc, { edit: "set_root_cause", text: "No agenda item for resources." });
  edit(nodal, nc, {
    edit: "put_action", id: "a-1", text: "Resources a standing agenda item", owner: "Addl Commr",
    target: "2026-02-15",
  });
  edit(nodal, nc, { edit: "move", move: "submit_response" });
  assert.equal(JSON.parse(nodal.nc_view(nc, "2026-01-15")).state, "response_submitted");
});
