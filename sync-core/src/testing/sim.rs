//! A deterministic simulation of one server engine and N device engines over
//! an in-memory network that drops, duplicates, delays and reorders messages,
//! with devices that go offline for a while. Same seed, same run.

use std::collections::BTreeMap;

use automerge::{Automerge, ChangeHash};

use crate::audit::AuditView;
use crate::date::{Date, Timestamp};
use crate::edit::Edit;
use crate::engine::{Effect, Engine, Input, Notice, PeerId, Side};
use crate::ids::DocumentId;
use crate::nc::{DueRules, Nc};
use crate::permissions::{Author, DocContext, Refusal};
use crate::testing::fixtures::actor;

/// How unreliable the network is.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetConfig {
    /// Probability that a message is lost.
    pub drop: f64,
    /// Probability that a message is delivered twice.
    pub duplicate: f64,
    /// Messages take 1..=max_delay_ms to arrive (so they overtake each other).
    pub max_delay_ms: i64,
}

impl NetConfig {
    /// A network that loses nothing (it still delays and reorders).
    pub const RELIABLE: NetConfig = NetConfig {
        drop: 0.0,
        duplicate: 0.0,
        max_delay_ms: 30,
    };
}

/// Time advanced per simulation round.
pub const STEP_MS: i64 = 10;

/// A small deterministic generator (splitmix64).
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0.0..1.0`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// A number in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// One simulated tablet.
#[derive(Debug)]
pub struct SimDevice {
    /// Its engine.
    pub engine: Engine,
    /// Its user.
    pub author: Author,
    /// Whether it is connected.
    pub online: bool,
    /// Rejections its server sent it.
    pub rejected: Vec<Notice>,
}

#[derive(Debug)]
enum To {
    Server { from: PeerId },
    Device(usize),
}

#[derive(Debug)]
struct Packet {
    at: i64,
    seq: u64,
    to: To,
    bytes: Vec<u8>,
}

/// What a run of the simulation exercised besides messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimCounts {
    /// Stores and quarantines the server's storage confirmed after a wait.
    pub late_confirmations: u64,
    /// Times a server document went cold.
    pub cooled: u64,
}

/// The simulated world.
#[derive(Debug)]
pub struct Sim {
    rng: Rng,
    /// The simulated clock.
    pub now: Timestamp,
    /// The server engine.
    pub server: Engine,
    /// The devices; device `i` is peer `i + 1` on the server.
    pub devices: Vec<SimDevice>,
    /// The network's behaviour; change it at will.
    pub net: NetConfig,
    /// Everything the server quarantined.
    pub quarantined: Vec<Effect>,
    /// Messages handed to the network, and delivered.
    pub sent: u64,
    /// Bytes handed to the network.
    pub bytes_sent: u64,
    /// The server's storage confirms a store or quarantine after up to
    /// this long (0: at once), as a real database commits later.
    pub store_delay_ms: i64,
    /// Documents the server keeps loaded at most: past this, each round
    /// it keeps cold (saved) those every device is in sync with.
    pub hot_documents: Option<usize>,
    /// What the server's storage confirmed late, and documents gone cold.
    pub counts: SimCounts,
    unconfirmed: Vec<(i64, u64)>,
    packets: Vec<Packet>,
    seq: u64,
    today: Date,
    /// The link fields of the server's documents (write-once, so read once).
    contexts: BTreeMap<DocumentId, DocContext>,
}

const SERVER: PeerId = 0;

impl Sim {
    /// A world whose server holds `docs`, with one device per author (device `i` uses actor `i + 1`'s id
    /// from the author's registered actors). Devices start offline and empty.
    pub fn new(
        seed: u64,
        net: NetConfig,
        today: Date,
        authors: Vec<Author>,
        docs: Vec<(DocumentId, Automerge)>,
    ) -> Sim {
        let mut server = Engine::new(Side::Server);
        for (id, doc) in docs {
            server.insert(id, doc);
        }
        let devices = authors
            .into_iter()
            .enumerate()
            .map(|(i, author)| {
                let a = author
                    .actors
                    .iter()
                    .next()
                    .cloned()
                    .unwrap_or_else(|| actor(i as u8 + 1));
                SimDevice {
                    engine: Engine::new(Side::Device(a)),
                    author,
                    online: false,
                    rejected: Vec::new(),
                }
            })
            .collect();
        let mut sim = Sim {
            rng: Rng::new(seed),
            now: Timestamp::start_of(today),
            server,
            devices,
            net,
            quarantined: Vec::new(),
            sent: 0,
            bytes_sent: 0,
            store_delay_ms: 0,
            hot_documents: None,
            counts: SimCounts::default(),
            unconfirmed: Vec::new(),
            packets: Vec::new(),
            seq: 0,
            today,
            contexts: BTreeMap::new(),
        };
        sim.learn_contexts();
        sim
    }

    /// Reads the context of server documents not seen before.
    fn learn_contexts(&mut self) {
        for id in self.server.doc_ids() {
            if !self.contexts.contains_key(id)
                && let Some(ctx) = self.server.doc(id).and_then(|d| DocContext::read(d).ok())
            {
                self.contexts.insert(*id, ctx);
            }
        }
    }

    /// The random generator (for tests that draw their edits from the same seed).
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    fn readable(&self, author: &Author) -> Vec<DocumentId> {
        self.contexts
            .iter()
            .filter(|(_, ctx)| author.may_read(ctx, self.today))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Connects or disconnects a device.
    pub fn set_online(&mut self, i: usize, online: bool) {
        if self.devices[i].online == online {
            return;
        }
        self.devices[i].online = online;
        let peer = i as PeerId + 1;
        if online {
            let docs: Vec<DocumentId> = self.devices[i].engine.doc_ids().copied().collect();
            let fx = self.devices[i].engine.handle(
                self.now,
                Input::Connected {
                    peer: SERVER,
                    author: None,
                    docs,
                },
            );
            self.device_effects(i, fx);
            let author = self.devices[i].author.clone();
            let docs = self.readable(&author);
            let fx = self.server.handle(
                self.now,
                Input::Connected {
                    peer,
                    author: Some(author),
                    docs,
                },
            );
            self.server_effects(fx);
        } else {
            self.packets.retain(|p| match p.to {
                To::Server { from } => from != peer,
                To::Device(d) => d != i,
            });
            let fx = self.devices[i]
                .engine
                .handle(self.now, Input::Disconnected { peer: SERVER });
            self.device_effects(i, fx);
            let fx = self.server.handle(self.now, Input::Disconnected { peer });
            self.server_effects(fx);
        }
    }

    /// A device's user makes an edit (online or not).
    pub fn edit(&mut self, i: usize, doc: DocumentId, edit: &Edit) -> Result<(), Refusal> {
        let author = self.devices[i].author.clone();
        let fx = self.devices[i].engine.edit(self.now, doc, edit, &author)?;
        self.device_effects(i, fx);
        Ok(())
    }

    fn enqueue(&mut self, to: To, bytes: Vec<u8>) {
        self.sent += 1;
        self.bytes_sent += bytes.len() as u64;
        if self.rng.unit() < self.net.drop {
            return;
        }
        let copies = if self.rng.unit() < self.net.duplicate {
            2
        } else {
            1
        };
        for c in 0..copies {
            let delay = 1 + self.rng.below(self.net.max_delay_ms.max(1) as u64) as i64;
            self.seq += 1;
            let to = match (&to, c) {
                (To::Server { from }, _) => To::Server { from: *from },
                (To::Device(d), _) => To::Device(*d),
            };
            self.packets.push(Packet {
                at: self.now.0 + delay,
                seq: self.seq,
                to,
                bytes: bytes.clone(),
            });
        }
    }

    fn server_effects(&mut self, mut fx: Vec<Effect>) {
        while !fx.is_empty() {
            let mut next = Vec::new();
            for e in fx {
                match e {
                    Effect::Send { peer, bytes } => {
                        let i = (peer - 1) as usize;
                        if self.devices.get(i).is_some_and(|d| d.online) {
                            self.enqueue(To::Device(i), bytes);
                        }
                    }
                    Effect::Store { ticket, .. } | Effect::Replace { ticket, .. } => {
                        next.extend(self.confirm_later(ticket));
                    }
                    q @ Effect::Quarantine { ticket, .. } => {
                        self.quarantined.push(q);
                        next.extend(self.confirm_later(ticket));
                    }
                    Effect::Notify(_) => {}
                }
            }
            fx = next;
        }
    }

    /// Confirms a server ticket now, or after a random wait up to
    /// [`Sim::store_delay_ms`].
    fn confirm_later(&mut self, ticket: u64) -> Vec<Effect> {
        if self.store_delay_ms <= 0 {
            return self.server.handle(self.now, Input::Stored { ticket });
        }
        let wait = self.rng.below(self.store_delay_ms as u64 + 1) as i64;
        self.unconfirmed.push((self.now.0 + wait, ticket));
        self.counts.late_confirmations += 1;
        Vec::new()
    }

    /// Confirms the server tickets whose storage is done, in ticket order.
    fn confirm_due(&mut self) {
        let now = self.now.0;
        let mut due: Vec<(i64, u64)> = Vec::new();
        self.unconfirmed.retain(|entry| {
            let ready = entry.0 <= now;
            if ready {
                due.push(*entry);
            }
            !ready
        });
        due.sort_by_key(|(_, ticket)| *ticket);
        for (_, ticket) in due {
            let fx = self.server.handle(self.now, Input::Stored { ticket });
            self.server_effects(fx);
        }
    }

    /// Past [`Sim::hot_documents`] loaded, keeps cold those that can be.
    fn cool(&mut self) {
        let Some(most) = self.hot_documents else {
            return;
        };
        let ids: Vec<DocumentId> = self.server.hot_ids().copied().collect();
        let mut hot = ids.len();
        for id in ids {
            if hot <= most {
                return;
            }
            if self.server.cool(&id) {
                self.counts.cooled += 1;
                hot -= 1;
            }
        }
    }

    fn device_effects(&mut self, i: usize, mut fx: Vec<Effect>) {
        while !fx.is_empty() {
            let mut next = Vec::new();
            for e in fx {
                match e {
                    Effect::Send { bytes, .. } => {
                        if self.devices[i].online {
                            self.enqueue(
                                To::Server {
                                    from: i as PeerId + 1,
                                },
                                bytes,
                            );
                        }
                    }
                    Effect::Store { ticket, .. }
                    | Effect::Replace { ticket, .. }
                    | Effect::Quarantine { ticket, .. } => next.extend(
                        self.devices[i]
                            .engine
                            .handle(self.now, Input::Stored { ticket }),
                    ),
                    Effect::Notify(n @ Notice::Rejected { .. }) => self.devices[i].rejected.push(n),
                    Effect::Notify(_) => {}
                }
            }
            fx = next;
        }
    }

    /// Shares with each online device the server documents it may read but does not have yet.
    fn sweep_access(&mut self) {
        for i in 0..self.devices.len() {
            if !self.devices[i].online {
                continue;
            }
            let peer = i as PeerId + 1;
            let author = self.devices[i].author.clone();
            for doc in self.readable(&author) {
                if !self.server.is_shared(peer, &doc) {
                    let fx = self.server.handle(self.now, Input::Share { peer, doc });
                    self.server_effects(fx);
                }
            }
        }
    }

    /// One round: time advances, due messages arrive, timers fire.
    pub fn step(&mut self) {
        self.now = Timestamp(self.now.0 + STEP_MS);
        let now = self.now.0;
        let mut due: Vec<Packet> = Vec::new();
        let mut keep = Vec::new();
        for p in self.packets.drain(..) {
            if p.at <= now {
                due.push(p);
            } else {
                keep.push(p);
            }
        }
        self.packets = keep;
        due.sort_by_key(|p| (p.at, p.seq));
        for p in due {
            match p.to {
                To::Server { from } => {
                    let fx = self.server.handle(
                        self.now,
                        Input::Received {
                            peer: from,
                            bytes: p.bytes,
                        },
                    );
                    self.server_effects(fx);
                }
                To::Device(i) => {
                    if self.devices[i].online {
                        let fx = self.devices[i].engine.handle(
                            self.now,
                            Input::Received {
                                peer: SERVER,
                                bytes: p.bytes,
                            },
                        );
                        self.device_effects(i, fx);
                    }
                }
            }
        }
        self.confirm_due();
        self.learn_contexts();
        self.sweep_access();
        self.cool();
        let fx = self.server.handle(self.now, Input::Tick);
        self.server_effects(fx);
        for i in 0..self.devices.len() {
            let fx = self.devices[i].engine.handle(self.now, Input::Tick);
            self.device_effects(i, fx);
        }
    }

    /// Whether every online device holds exactly the server's heads for
    /// every document it may read (the server's stored, loaded or cold).
    pub fn converged(&self) -> bool {
        self.unconfirmed.is_empty()
            && self.devices.iter().filter(|d| d.online).all(|d| {
                let readable = self.readable(&d.author);
                readable.len() == d.engine.doc_ids().count()
                    && readable.iter().all(|id| {
                        let server = self.server.heads(id);
                        let device = d.engine.doc(id).map(sorted_heads);
                        server.is_some() && server == device
                    })
            })
    }

    /// Runs rounds until converged with nothing in flight; the number of rounds, or `None` past `max_rounds`.
    pub fn run_until_converged(&mut self, max_rounds: usize) -> Option<usize> {
        for round in 0..=max_rounds {
            if self.packets.is_empty() && self.converged() {
                return Some(round);
            }
            self.step();
        }
        None
    }

    /// The heads of every document, per replica (server first), sorted.
    pub fn heads(&self) -> Vec<BTreeMap<DocumentId, Vec<ChangeHash>>> {
        let server = self
            .server
            .doc_ids()
            .filter_map(|id| self.server.heads(id).map(|h| (*id, h)))
            .collect();
        std::iter::once(server)
            .chain(self.devices.iter().map(|d| {
                d.engine
                    .doc_ids()
                    .filter_map(|id| d.engine.doc(id).map(|doc| (*id, sorted_heads(doc))))
                    .collect()
            }))
            .collect()
    }

    /// The server's copy of a document, loaded again if it is cold.
    pub fn server_doc(&mut self, id: &DocumentId) -> Option<&Automerge> {
        self.server.hot(id)
    }
}

fn sorted_heads(doc: &Automerge) -> Vec<ChangeHash> {
    let mut h = doc.get_heads();
    h.sort();
    h
}

/// Everything derived from a document that users see, as text to compare across replicas.
pub fn derived(doc: &Automerge, as_of: Date) -> String {
    if let Ok(view) = AuditView::read(doc) {
        return format!("{view:?}");
    }
    match Nc::read(doc) {
        Ok(nc) => format!("{:?} {:?}", nc, nc.view(&DueRules::default(), as_of)),
        Err(e) => format!("unreadable: {e}"),
    }
}
