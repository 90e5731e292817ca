//! Phase "reconnect": every tablet reconnects at once (one task each) and
//! syncs until every tablet holds exactly the server's heads of every
//! document it holds.
//!
//! Each task publishes its heads whenever the server has said it holds
//! exactly them (`Engine::in_sync` for every document). The run has converged
//! when every tablet has published and every document's holders agree: a
//! change still in flight is either unacknowledged on its author's tablet (not
//! in sync) or on the server and not yet at the other holder (disagreement).

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use sync_core::automerge::ChangeHash;
use sync_core::ids::DocumentId;

use super::Deadline;
use super::http::Http;
use super::tablet::{Tablet, heads};
use crate::client::Client;

/// How long a task syncs before it looks at the stop flag again.
const SLICE: Duration = Duration::from_millis(250);

type Snapshot = BTreeMap<DocumentId, Vec<ChangeHash>>;

/// What the phase measured.
#[derive(Debug, Default)]
pub struct Reconnected {
    /// Whether every tablet converged.
    pub converged: bool,
    /// Seconds from the first reconnect to the last tablet converged (or to giving up).
    pub seconds: f64,
    /// Bytes sent and received by the tablets.
    pub bytes: (u64, u64),
    /// Frames sent and received by the tablets.
    pub frames: (u64, u64),
    /// Refusals the server sent.
    pub rejections: usize,
    /// What went wrong, per tablet.
    pub failures: Vec<String>,
}

#[derive(Debug, Default)]
struct Progress {
    snaps: Vec<Option<Snapshot>>,
    converged_at: Option<Instant>,
}

#[derive(Debug, Default)]
struct Shared {
    progress: Mutex<Progress>,
    stop: AtomicBool,
}

impl Shared {
    fn publish(&self, index: usize, snap: Option<Snapshot>) {
        let Ok(mut p) = self.progress.lock() else {
            return;
        };
        p.snaps[index] = snap;
        let mut seen: HashMap<&DocumentId, &Vec<ChangeHash>> = HashMap::new();
        let agree = p.snaps.iter().all(|s| {
            s.as_ref()
                .is_some_and(|s| s.iter().all(|(d, h)| *seen.entry(d).or_insert(h) == h))
        });
        if agree && p.converged_at.is_none() {
            p.converged_at = Some(Instant::now());
            self.stop.store(true, Ordering::Release);
        }
    }
}

fn snapshot(c: &Client) -> Snapshot {
    c.engine
        .doc_ids()
        .map(|d| (*d, heads(&c.engine, d)))
        .collect()
}

fn digest(c: &Client) -> u64 {
    let mut h = DefaultHasher::new();
    for d in c.engine.doc_ids() {
        d.hash(&mut h);
        heads(&c.engine, d).hash(&mut h);
    }
    h.finish()
}

/// Reconnects every tablet at once; returns their clients, in tablet order
/// (`None` for a tablet whose connection failed).
pub async fn reconnect(
    http: &Http,
    tablets: &mut Vec<Tablet>,
    deadline: Deadline,
) -> (Vec<Option<Client>>, Reconnected) {
    let shared = Arc::new(Shared::default());
    if let Ok(mut p) = shared.progress.lock() {
        p.snaps = vec![None; tablets.len()];
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (index, mut tablet) in std::mem::take(tablets).into_iter().enumerate() {
        let (http, shared) = (http.clone(), shared.clone());
        tasks.push(tokio::spawn(async move {
            let result = sync_until_stopped(&http, &mut tablet, index, &shared, deadline).await;
            if result.is_err() {
                shared.stop.store(true, Ordering::Release);
            }
            (tablet, result)
        }));
    }
    let mut clients = Vec::new();
    let mut out = Reconnected::default();
    for task in tasks {
        match task.await {
            Ok((tablet, result)) => {
                match result {
                    Ok(client) => {
                        out.bytes.0 += client.bytes.0;
                        out.bytes.1 += client.bytes.1;
                        out.frames.0 += client.frames.0;
                        out.frames.1 += client.frames.1;
                        out.rejections += client.rejections.len();
                        clients.push(Some(client));
                    }
                    Err(e) => {
                        out.failures.push(format!("{}: {e:#}", tablet.user));
                        clients.push(None);
                    }
                }
                tablets.push(tablet);
            }
            Err(e) => out.failures.push(format!("a tablet's task failed: {e}")),
        }
    }
    let converged_at = shared.progress.lock().ok().and_then(|p| p.converged_at);
    out.converged = converged_at.is_some() && out.failures.is_empty();
    out.seconds = converged_at
        .unwrap_or_else(Instant::now)
        .duration_since(started)
        .as_secs_f64();
    if converged_at.is_none() && out.failures.is_empty() {
        out.failures.push(format!(
            "the tablets had not converged when the time ran out: {}",
            diagnose(tablets, &clients)
        ));
    }
    (clients, out)
}

/// What keeps the tablets apart: documents not in sync with the server, and
/// documents whose holders hold different heads.
fn diagnose(tablets: &[Tablet], clients: &[Option<Client>]) -> String {
    let mut unsynced = Vec::new();
    let mut held: HashMap<DocumentId, Vec<Vec<ChangeHash>>> = HashMap::new();
    for (t, c) in tablets.iter().zip(clients) {
        let Some(c) = c else { continue };
        let docs: Vec<DocumentId> = c.engine.doc_ids().copied().collect();
        let behind = docs
            .iter()
            .filter(|d| !c.engine.in_sync(crate::client::SERVER, d))
            .count();
        if behind > 0 {
            unsynced.push(format!(
                "{} ({behind} of {} documents; {} changes waiting for dependencies; unstored: {})",
                t.user,
                docs.len(),
                c.engine.pending_changes(),
                c.engine.has_unstored()
            ));
        }
        for d in docs {
            held.entry(d).or_default().push(heads(&c.engine, &d));
        }
    }
    let apart = held
        .values()
        .filter(|hs| hs.iter().any(|h| *h != hs[0]))
        .count();
    format!(
        "{} tablets not in sync with the server [{}]; {apart} documents whose holders differ",
        unsynced.len(),
        unsynced
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("; ")
    )
}

async fn sync_until_stopped(
    http: &Http,
    tablet: &mut Tablet,
    index: usize,
    shared: &Shared,
    deadline: Deadline,
) -> Result<Client> {
    let mut client = tablet.connect(http).await?;
    let mut published: Option<u64> = None;
    while !shared.stop.load(Ordering::Acquire) && !deadline.passed() {
        let last = published;
        client
            .run_until(SLICE.min(deadline.left()), |c| {
                shared.stop.load(Ordering::Relaxed) || (c.in_sync() && Some(digest(c)) != last)
            })
            .await?;
        if client.in_sync() {
            let d = digest(&client);
            if Some(d) != published {
                shared.publish(index, Some(snapshot(&client)));
                published = Some(d);
            }
        } else if published.is_some() {
            shared.publish(index, None);
            published = None;
        }
    }
    Ok(client)
}

/// Compares every tablet's heads with the heads stored in the server's
/// database; returns the differences found.
pub async fn verify_with_db(
    db: &crate::db::Db,
    tablets: &[Tablet],
    clients: &[Option<Client>],
) -> Result<Vec<String>> {
    let mut wrong = Vec::new();
    let mut stored: HashMap<DocumentId, Vec<ChangeHash>> = HashMap::new();
    for (t, c) in tablets.iter().zip(clients) {
        let Some(c) = c else { continue };
        for d in t.documents() {
            if let std::collections::hash_map::Entry::Vacant(e) = stored.entry(d) {
                let mut h = crate::db::documents::load(db, &d)
                    .await?
                    .map(|doc| doc.get_heads())
                    .unwrap_or_default();
                h.sort();
                e.insert(h);
            }
            if stored.get(&d) != Some(&heads(&c.engine, &d)) {
                wrong.push(format!(
                    "{} does not hold the server's heads of {d}",
                    t.user
                ));
            }
        }
    }
    Ok(wrong)
}
