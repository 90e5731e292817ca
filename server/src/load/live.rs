//! Phase "live": every tablet online (and, with `--idle-devices`, extra
//! devices that each hold one audit and only listen). Tablets take turns
//! making single edits on an audit their partner holds; each sample is the
//! time from the edit until the partner's engine holds the change.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::Deadline;
use super::download::sign_in_all;
use super::http::Http;
use super::setup::DEVICES_PER_IDLE_ACCOUNT;
use super::tablet::Tablet;
use super::work::Checklist;
use crate::client::Client;

/// The longest one change may take to reach the partner.
const SAMPLE_LIMIT: Duration = Duration::from_secs(10);

/// How long a tablet reads its socket before a sample may take it.
const DRAIN_SLICE: Duration = Duration::from_millis(50);

/// What the phase measured.
#[derive(Debug, Default)]
pub struct Live {
    /// Milliseconds from edit to arrival, per sample.
    pub samples_ms: Vec<f64>,
    /// Samples that did not arrive within the limit.
    pub lost: usize,
    /// Idle devices connected during the phase.
    pub idle_connected: usize,
    /// Connections open during the phase.
    pub connections: usize,
}

/// An idle device listening until told to stop.
type Listener = JoinHandle<Result<Client>>;

/// Connects `count` idle devices (`DEVICES_PER_IDLE_ACCOUNT` per account),
/// waits until each holds its audit, and keeps them listening.
async fn idle_devices(
    http: &Http,
    accounts: &[String],
    count: usize,
    stop: &Arc<AtomicBool>,
    ready: &Arc<AtomicUsize>,
    deadline: Deadline,
) -> Result<Vec<Listener>> {
    let first = sign_in_all(http, accounts).await?;
    let mut devices = Vec::with_capacity(count);
    for (k, t) in first.into_iter().enumerate() {
        let extra = (count - k * DEVICES_PER_IDLE_ACCOUNT).min(DEVICES_PER_IDLE_ACCOUNT);
        for n in 1..extra {
            devices.push(t.another_device(http, 1000 + n).await?);
        }
        devices.push(t);
    }
    devices.truncate(count);
    let mut listeners = Vec::with_capacity(devices.len());
    for mut device in devices {
        let (http, stop, ready) = (http.clone(), stop.clone(), ready.clone());
        listeners.push(tokio::spawn(async move {
            let mut client = device.connect(&http).await?;
            let want: Vec<_> = device.documents().collect();
            let held = client
                .run_until(deadline.left(), |c| {
                    want.iter().all(|d| c.engine.doc(d).is_some()) && c.in_sync()
                })
                .await?;
            anyhow::ensure!(
                held,
                "an idle device of {} never got its audit",
                device.user
            );
            ready.fetch_add(1, Ordering::AcqRel);
            while !stop.load(Ordering::Acquire) && !deadline.passed() {
                client
                    .run_until(Duration::from_millis(500), |_| stop.load(Ordering::Relaxed))
                    .await?;
            }
            Ok(client)
        }));
    }
    Ok(listeners)
}

/// Keeps a tablet reading its socket while no sample needs it.
async fn drain(
    client: Arc<Mutex<Client>>,
    stop: Arc<AtomicBool>,
    deadline: Deadline,
) -> Result<()> {
    while !stop.load(Ordering::Acquire) && !deadline.passed() {
        {
            let mut c = client.lock().await;
            c.run_until(DRAIN_SLICE, |_| stop.load(Ordering::Relaxed))
                .await?;
        }
        tokio::task::yield_now().await;
    }
    Ok(())
}

/// Runs the phase with the tablets' clients, connected; hands them back.
#[allow(clippy::too_many_arguments)]
pub async fn live(
    http: &Http,
    tablets: &[Tablet],
    clients: Vec<Client>,
    checklist: &Checklist,
    samples: usize,
    idle_accounts: &[String],
    idle_count: usize,
    deadline: Deadline,
) -> Result<(Live, Vec<Client>)> {
    let mut out = Live::default();
    let stop = Arc::new(AtomicBool::new(false));
    // Every tablet keeps reading its socket, as a tablet does; a sample
    // takes the two it needs.
    let shared: Vec<Arc<Mutex<Client>>> = clients
        .into_iter()
        .map(|c| Arc::new(Mutex::new(c)))
        .collect();
    let drains: Vec<JoinHandle<Result<()>>> = shared
        .iter()
        .map(|c| tokio::spawn(drain(c.clone(), stop.clone(), deadline)))
        .collect();
    let ready = Arc::new(AtomicUsize::new(0));
    let listeners = idle_devices(http, idle_accounts, idle_count, &stop, &ready, deadline).await?;
    // Every idle device holds its audit before the first sample.
    while ready.load(Ordering::Acquire) < listeners.len()
        && !listeners.iter().any(|l| l.is_finished())
        && !deadline.passed()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    out.idle_connected = listeners.len();
    out.connections = shared.len() + listeners.len();
    let n = shared.len();
    for k in 0..if n >= 2 { samples } else { 0 } {
        if deadline.passed() || drains.iter().any(|d| d.is_finished()) {
            break;
        }
        let (i, j) = (k % n, (k + 1) % n);
        let docs = &tablets[i].leads;
        let Some((doc, _)) = docs.get((k / n) % docs.len().max(1)) else {
            continue;
        };
        let edit = checklist.live_edit(k);
        let (mut editor, mut partner) = (shared[i].lock().await, shared[j].lock().await);
        let started = Instant::now();
        editor
            .edit(*doc, &edit, &tablets[i].author)
            .await
            .with_context(|| format!("live edit by {}", tablets[i].user))?;
        let want = editor
            .engine
            .doc(doc)
            .map(|d| d.get_heads())
            .unwrap_or_default();
        // Both keep reading their sockets: the editor may have to answer the
        // server before the change can travel.
        let arrived = AtomicBool::new(false);
        let (took, editor_done) = tokio::join!(
            async {
                let held = partner
                    .run_until(SAMPLE_LIMIT, |c| {
                        c.engine.doc(doc).is_some_and(|d| {
                            want.iter().all(|h| d.get_change_meta_by_hash(h).is_some())
                        })
                    })
                    .await;
                let took = started.elapsed();
                arrived.store(true, Ordering::Release);
                held.map(|h| h.then_some(took))
            },
            editor.run_until(SAMPLE_LIMIT, |c| {
                arrived.load(Ordering::Acquire) && c.in_sync()
            })
        );
        editor_done?;
        match took? {
            Some(took) => out.samples_ms.push(took.as_secs_f64() * 1e3),
            None => out.lost += 1,
        }
    }
    stop.store(true, Ordering::Release);
    for l in listeners {
        match l.await {
            Ok(Ok(client)) => drop(client.disconnect().await),
            Ok(Err(e)) => anyhow::bail!("an idle device failed: {e:#}"),
            Err(e) => anyhow::bail!("an idle device's task failed: {e}"),
        }
    }
    for d in drains {
        d.await??;
    }
    let clients = shared
        .into_iter()
        .map(|c| Arc::try_unwrap(c).map(Mutex::into_inner))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| anyhow::anyhow!("a tablet's client is still in use"))?;
    Ok((out, clients))
}

/// The `p`-th percentile (0..=100) of a sample, nearest rank.
pub fn percentile(samples: &[f64], p: f64) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    let mut s = samples.to_vec();
    s.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
    s[rank.clamp(1, s.len()) - 1]
}
