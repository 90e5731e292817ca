// Changes made through the wasm build merge with changes made natively.
//
// The wasm device (K. Iyer, lead auditor) runs in this process; the native
// peer (sync-wasm's `native_peer` example) runs a sync-core server engine with
// a native device for S. Khan (team member) connected to it. This test carries
// the frames between the wasm device and the native server, so both builds of
// sync-core validate, apply and merge each other's changes.
// `cargo xtask test` builds both and sets SQM_WASM_PKG and SQM_NATIVE_PEER.
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import path from "node:path";

const pkgDir = process.env.SQM_WASM_PKG;
const peerBin = process.env.SQM_NATIVE_PEER;
if (!pkgDir || !peerBin) {
  throw new Error(
    "SQM_WASM_PKG and SQM_NATIVE_PEER must be set (the nodejs wasm build and the native_peer " +
      "example of sync-wasm). Run these tests with `cargo xtask test`.",
  );
}
const require = createRequire(import.meta.url);
const wasm = require(path.resolve(pkgDir, "sync_wasm.js"));

/** The native peer as a process answering one JSON line per command. */
class NativePeer {
  constructor() {
    this.child = spawn(peerBin, [], { stdio: ["pipe", "pipe", "inherit"] });
    this.lines = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  }
  async next() {
    const { value, done } = await this.lines.next();
    assert.ok(!done, "the native peer ended early");
    const answer = JSON.parse(value);
    if (answer.error) throw new Error(`native peer: ${answer.error}`);
    return answer;
  }
  async call(cmd) {
    this.child.stdin.write(JSON.stringify(cmd) + "\n");
    return this.next();
  }
  close() {
    this.child.stdin.end();
  }
}

const hex = (bytes) => Buffer.from(bytes).toString("hex");
const unhex = (text) => new Uint8Array(Buffer.from(text, "hex"));

/** A simulated clock: one second per step, on the demo's audit day. */
function clock() {
  let t = Date.parse("2026-01-15T10:00:00Z");
  return () => new Date((t += 1000)).toISOString();
}

/**
 * What the PWA does after every call: the changed documents are kept (here:
 * nowhere) and confirmed; only then does the device offer them to the server.
 */
function keep(device, now) {
  const ids = device.take_unsaved();
  for (const id of ids) device.save(id);
  return device.stored(ids, now());
}

/** Carries frames both ways until neither side has anything more to say. */
async function exchange(device, peer, now, toPeer, toDevice) {
  for (let round = 0; round < 50; round++) {
    if (toPeer.length === 0 && toDevice.length === 0) {
      const t = now();
      toPeer = [...keep(device, now), ...device.tick(t)];
      toDevice = (await peer.call({ cmd: "tick", now: t })).frames;
      if (process.env.DEBUG) console.error("tick", round, toPeer.length, toDevice.length);
      if (toPeer.length === 0 && toDevice.length === 0) return round;
    }
    const next = [];
    for (const f of toDevice) next.push(...device.receive(unhex(f), now()), ...keep(device, now));
    const back = [];
    for (const f of toPeer) {
      back.push(...(await peer.call({ cmd: "receive", frame: hex(f), now: now() })).frames);
    }
    toPeer = next;
    toDevice = back;
  }
  throw new Error("the wasm device and the native peer never stopped talking");
}

function leadAuthor(hello) {
  return JSON.stringify({
    user: "k.iyer",
    grants: [{ unit: "DEMO-I", role: "auditor", from: "2025-04-01" }],
    audits: { [hello.audit_id]: "lead" },
    planned: {
      [hello.audit_id]: {
        unit: "DEMO-I", number: "IA/DEMO-I/2025-26/003", template_version: 2, lead: "k.iyer",
        checklist: { version: 2, items: {} },
      },
    },
    actors: [hello.lead_actor],
  });
}

const header = {
  edit: "create_audit",
  unit: "DEMO-I",
  number: "IA/DEMO-I/2025-26/003",
  scope: ["P03", "P04"],
  template_version: 2,
  lead: "k.iyer",
  team: ["k.iyer", "s.khan"],
  start: "2026-01-13",
  end: "2026-01-14",
};

test("wasm and native edits, made apart, merge into one state on both sides", async (t) => {
  const peer = new NativePeer();
  t.after(() => peer.close());
  const hello = await peer.next();
  const now = clock();
  const device = new wasm.Device(hello.lead_actor, leadAuthor(hello));
  const audit = hello.audit_id;

  // The lead creates the audit in wasm and syncs it to the server and the member.
  device.edit(audit, JSON.stringify(header), now());
  const toPeer = device.connect(now());
  const toDevice = (await peer.call({ cmd: "connect", now: now() })).frames;
  await exchange(device, peer, now, toPeer, toDevice);
  let state = await peer.call({ cmd: "state", doc: audit });
  assert.deepEqual(state.server_heads, device.heads(audit), "the server has the wasm-made audit");
  assert.deepEqual(state.member_heads, device.heads(audit), "the member has the wasm-made audit");

  // Apart: both answer the same item differently, and each answers one of its own.
  device.disconnect(now());
  const answer = (key, cpna, note) =>
    JSON.stringify({ edit: "set_response", key, answer: { cpna }, note });
  device.edit(audit, answer("sd.timeliness@P03", "partly", "wasm: 19 days"), now());
  device.edit(audit, answer("cc.charter_displayed@P04", "conform", "wasm"), now());
  device.edit(
    audit,
    JSON.stringify({
      edit: "put_finding",
      id: "f-01",
      class: "minor",
      clause: "3.2.1.3",
      process: "P03",
      text: "Amendment approved in 19 days against the charter's 15.",
    }),
    now(),
  );
  const notes = (text) => JSON.stringify({ edit: "set_notes", text });
  device.edit(audit, notes("wasm: opening meeting at 10:00"), now());
  for (const edit of [
    answer("sd.timeliness@P03", "not_conform", "native: 22 days"),
    answer("rk.register_kept@P03", "conform", "native"),
    notes("native: opening meeting at 10:15"),
  ]) {
    await peer.call({ cmd: "edit", doc: audit, edit: JSON.parse(edit), now: now() });
  }
  state = await peer.call({ cmd: "state", doc: audit });
  assert.notDeepEqual(state.member_heads, device.heads(audit), "the two sides differ while apart");

  // Together again: one state everywhere, holding every edit of both sides.
  const rounds = await exchange(device, peer, now, device.connect(now()), (
    await peer.call({ cmd: "connect", now: now() })
  ).frames);
  assert.ok(rounds < 50);
  state = await peer.call({ cmd: "state", doc: audit });
  assert.equal(state.quarantined, 0, "the server refused nothing");
  assert.deepEqual(state.server_heads, device.heads(audit));
  assert.deepEqual(state.member_heads, device.heads(audit));
  assert.equal(state.member_view, device.audit_view(audit), "the same view on both sides");

  const view = JSON.parse(device.audit_view(audit));
  assert.deepEqual(Object.keys(view.responses).sort(), [
    "cc.charter_displayed@P04",
    "rk.register_kept@P03",
    "sd.timeliness@P03",
  ]);
  assert.equal(view.findings["f-01"].class, "minor");
  // The concurrent answers to one item: both shown, with their writers, the same on both sides.
  const contest = view.contested_responses["sd.timeliness@P03"];
  assert.deepEqual(
    contest.map((r) => `${r.by}: ${r.note}`).sort(),
    ["k.iyer: wasm: 19 days", "s.khan: native: 22 days"],
  );
  const winner = view.responses["sd.timeliness@P03"].note;
  assert.ok(["wasm: 19 days", "native: 22 days"].includes(winner), winner);
  // The meeting notes both wrote: both shown, with their writers; one is the notes shown.
  assert.deepEqual(
    view.contested_notes.map((n) => `${n.by}: ${n.value}`).sort(),
    ["k.iyer: wasm: opening meeting at 10:00", "s.khan: native: opening meeting at 10:15"],
  );
  assert.equal(view.contested_notes.filter((n) => n.shown && n.value === view.notes).length, 1);

  // A member's tablet (wasm too) offers no settlement: it refuses it as the server would.
  const memberActor = "5a510200000000000000000000000009";
  const memberTablet = new wasm.Device(
    memberActor,
    JSON.stringify({
      user: "s.khan",
      grants: [{ unit: "DEMO-I", role: "auditor", from: "2025-04-01" }],
      audits: { [audit]: "member" },
      actors: [memberActor],
    }),
  );
  memberTablet.load(audit, device.save(audit));
  assert.throws(
    () =>
      memberTablet.edit(
        audit,
        answer("sd.timeliness@P03", "partly", "khan settles it himself"),
        now(),
      ),
    /audit\.settle/,
  );
  assert.deepEqual(memberTablet.heads(audit), device.heads(audit), "the refusal left no trace");

  // The lead settles it on the member's value; the contest is gone on both sides.
  const members = contest.find((r) => r.by === "s.khan");
  device.edit(
    audit,
    JSON.stringify({
      edit: "set_response",
      key: "sd.timeliness@P03",
      answer: members.answer,
      note: members.note,
      evidence: view.responses["sd.timeliness@P03"].evidence,
    }),
    now(),
  );
  await exchange(device, peer, now, keep(device, now), []);
  state = await peer.call({ cmd: "state", doc: audit });
  assert.equal(state.quarantined, 0, "the lead's settlement is accepted");
  assert.deepEqual(state.member_heads, device.heads(audit));
  assert.equal(state.member_view, device.audit_view(audit));
  let settled = JSON.parse(device.audit_view(audit));
  assert.deepEqual(settled.contested_responses, {});
  assert.equal(settled.contested_notes.length, 2, "the notes are not settled by an answer");
  // Any auditor of the team settles the notes by writing them again.
  device.edit(audit, notes("Opening meeting 10:00-10:40"), now());
  await exchange(device, peer, now, keep(device, now), []);
  state = await peer.call({ cmd: "state", doc: audit });
  assert.equal(state.quarantined, 0, "the notes written over both are accepted");
  assert.equal(state.member_view, device.audit_view(audit));
  settled = JSON.parse(device.audit_view(audit));
  assert.deepEqual(settled.contested_notes, []);
  assert.equal(settled.notes, "Opening meeting 10:00-10:40");
  assert.equal(settled.responses["sd.timeliness@P03"].note, "native: 22 days");
});

test("the wasm device refuses what its user may not write, as the server would", () => {
  const hello = { audit_id: wasm.new_document_id(1768262400000, new Uint8Array(10).fill(3)) };
  hello.lead_actor = "5a510100000000000000000000000001";
  const device = new wasm.Device(hello.lead_actor, leadAuthor(hello));
  const now = clock();
  device.edit(hello.audit_id, JSON.stringify(header), now());
  const may = JSON.parse(device.may_edit(hello.audit_id, '{"move":"close"}', "2026-01-15"));
  assert.equal(may.ok, false);
  assert.equal(may.rule, "move.table");
  assert.equal(JSON.parse(device.may_edit(hello.audit_id, '{"move":"start"}', "2026-01-15")).ok, true);
  const before = device.heads(hello.audit_id);
  assert.throws(
    () => device.edit(hello.audit_id, JSON.stringify({ edit: "set_correction", text: "x" }), now()),
    /edit\.kind/,
  );
  assert.throws(() => device.edit(hello.audit_id, "{not json", now()), /edit JSON/);
  assert.deepEqual(device.heads(hello.audit_id), before, "a refused edit changes nothing");
});
