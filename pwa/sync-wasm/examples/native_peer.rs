//! The native side of the Node tests in `tests/wasm/`: a sync-core server
//! engine that knows the demo unit's people, with a native device (S. Khan,
//! team member) connected to it in the same process. The wasm device in Node
//! (K. Iyer, lead) is the server's other peer; Node carries its frames.
//!
//! One JSON object per line on stdin, one answer per line on stdout:
//!
//! ```text
//! <- {"audit_id": "...", "nc_id": "...", "lead_actor": "..."}         on start
//! -> {"cmd": "edit", "doc": ID, "edit": {...}, "now": ISO}            native edit (member)
//! -> {"cmd": "connect", "now": ISO}                                   the wasm device connected
//! -> {"cmd": "receive", "frame": HEX, "now": ISO}                     a frame from the wasm device
//! -> {"cmd": "tick", "now": ISO}
//! <- {"frames": [HEX, ...]}                                           for the wasm device (all three)
//! -> {"cmd": "state", "doc": ID}
//! <- {"server_heads": [...], "member_heads": [...], "member_view": "...", "quarantined": N}
//! ```
//!
//! Errors answer `{"error": "..."}`; the process ends at end of input.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, anyhow};
use serde_json::{Value, json};
use sync_core::date::Timestamp;
use sync_core::engine::{Effect, Engine, Input, Notice, PeerId, Side};
use sync_core::ids::DocumentId;
use sync_core::testing::fixtures::{Demo, actor};
use sync_wasm::Device;
use sync_wasm::edit::parse_edit;
use sync_wasm::view::audit_json;

/// The wasm device's connection number on the server.
const WASM: PeerId = 1;
/// The native member device's connection number on the server.
const MEMBER: PeerId = 2;

struct Peer {
    server: Engine,
    member: Device,
    demo: Demo,
    quarantined: usize,
}

/// The member's tablet keeps what changed (here: in memory) and confirms it.
fn keep(device: &mut Device, now: Timestamp) -> Vec<Vec<u8>> {
    let ids = device.take_unsaved();
    device.stored(&ids, now)
}

impl Peer {
    fn new() -> Result<Peer> {
        let demo = Demo::new();
        let mut peer = Peer {
            server: Engine::new(Side::Server),
            member: Device::new(actor(2), demo.member.clone())?,
            demo,
            quarantined: 0,
        };
        let now = peer.demo.now();
        let effects = peer.server.handle(
            now,
            Input::Connected {
                peer: MEMBER,
                author: Some(peer.demo.member.clone()),
                docs: Vec::new(),
            },
        );
        let mut to_wasm = peer.carry_out(now, effects);
        let frames = peer.member.connect(now);
        to_wasm.extend(peer.relay_member(now, frames));
        Ok(peer)
    }

    /// Carries out the server's effects; returns the frames for the wasm device.
    fn carry_out(&mut self, now: Timestamp, effects: Vec<Effect>) -> Vec<Vec<u8>> {
        let mut to_wasm = Vec::new();
        let mut queue = effects;
        while !queue.is_empty() {
            let mut next = Vec::new();
            for effect in queue {
                match effect {
                    Effect::Send { peer: WASM, bytes } => to_wasm.push(bytes),
                    Effect::Send { bytes, .. } => {
                        let mut frames = self.member.receive(bytes, now);
                        frames.extend(keep(&mut self.member, now));
                        for frame in frames {
                            next.extend(self.server.handle(
                                now,
                                Input::Received {
                                    peer: MEMBER,
                                    bytes: frame,
                                },
                            ));
                        }
                    }
                    Effect::Store { ticket, .. } | Effect::Replace { ticket, .. } => {
                        next.extend(self.server.handle(now, Input::Stored { ticket }));
                    }
                    Effect::Quarantine { ticket, .. } => {
                        self.quarantined += 1;
                        next.extend(self.server.handle(now, Input::Stored { ticket }));
                    }
                    // A document one device made: the other device's user is on its team too.
                    Effect::Notify(Notice::Created { doc, peer }) => {
                        let other = if peer == WASM { MEMBER } else { WASM };
                        next.extend(self.server.handle(now, Input::Share { peer: other, doc }));
                    }
                    Effect::Notify(_) => {}
                }
            }
            queue = next;
        }
        to_wasm
    }

    fn relay_member(&mut self, now: Timestamp, frames: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        let mut to_wasm = Vec::new();
        for bytes in frames {
            let effects = self.server.handle(
                now,
                Input::Received {
                    peer: MEMBER,
                    bytes,
                },
            );
            to_wasm.extend(self.carry_out(now, effects));
        }
        to_wasm
    }

    fn server_input(&mut self, now: Timestamp, input: Input) -> Vec<Vec<u8>> {
        let effects = self.server.handle(now, input);
        self.carry_out(now, effects)
    }

    fn command(&mut self, line: &str) -> Result<Value> {
        let cmd: Value = serde_json::from_str(line).context("the line is not JSON")?;
        let text = |key: &str| {
            cmd.get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| anyhow!("`{key}` is missing"))
        };
        let now = || -> Result<Timestamp> { Ok(text("now")?.parse()?) };
        let doc = || -> Result<DocumentId> { Ok(text("doc")?.parse()?) };
        let frames = match text("cmd")? {
            "edit" => {
                let now = now()?;
                let edit = parse_edit(&cmd.get("edit").context("`edit` is missing")?.to_string())?;
                self.member.edit(doc()?, &edit, now)?;
                let out = keep(&mut self.member, now);
                self.relay_member(now, out)
            }
            "connect" => {
                let docs = self.server.doc_ids().copied().collect();
                let author = Some(self.demo.lead.clone());
                let input = Input::Connected {
                    peer: WASM,
                    author,
                    docs,
                };
                self.server_input(now()?, input)
            }
            "receive" => {
                let bytes = from_hex(text("frame")?)?;
                self.server_input(now()?, Input::Received { peer: WASM, bytes })
            }
            "tick" => {
                let now = now()?;
                let mut out = self.server_input(now, Input::Tick);
                let frames = self.member.tick(now);
                out.extend(self.relay_member(now, frames));
                out
            }
            "state" => {
                let id = doc()?;
                let hex = |heads: Vec<sync_core::automerge::ChangeHash>| -> Vec<String> {
                    heads.iter().map(ToString::to_string).collect()
                };
                let mut server_heads = self
                    .server
                    .doc(&id)
                    .map(|d| d.get_heads())
                    .unwrap_or_default();
                server_heads.sort();
                return Ok(json!({
                    "server_heads": hex(server_heads),
                    "member_heads": hex(self.member.heads(id)?),
                    "member_view": audit_json(
                        self.member.doc(id)?,
                        self.member.author().planned.get(&id).map(|p| &*p.checklist),
                    )?,
                    "quarantined": self.quarantined,
                }));
            }
            other => return Err(anyhow!("unknown command `{other}`")),
        };
        Ok(json!({ "frames": frames.iter().map(|f| to_hex(f)).collect::<Vec<_>>() }))
    }
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Result<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return Err(anyhow!("odd-length hex"));
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(|| anyhow!("bad hex at {i}"))
        })
        .collect()
}

fn main() -> Result<()> {
    let mut peer = Peer::new()?;
    let mut out = std::io::stdout().lock();
    let hello = json!({
        "audit_id": peer.demo.audit_id.to_string(),
        "nc_id": peer.demo.nc_id.to_string(),
        "lead_actor": actor(1).to_hex_string(),
    });
    writeln!(out, "{hello}")?;
    out.flush()?;
    for line in std::io::stdin().lock().lines() {
        let answer = peer
            .command(&line?)
            .unwrap_or_else(|e| json!({ "error": format!("{e:#}") }));
        writeln!(out, "{answer}")?;
        out.flush()?;
    }
    Ok(())
}
