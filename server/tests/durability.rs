//! Durability: `sqm serve` is killed with SIGKILL 20 times while 8 tablets
//! sync. Each tablet records an acknowledgement (the server's heads covering
//! its change) the moment the frame carrying it is read. After every kill,
//! once every tablet has seen its socket die and before the server starts
//! again (so no tablet can upload anything again), each change any tablet
//! saw acknowledged is in the database, and `sqm verify` passes.

mod common;

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use common::{Backend, drop_database, fresh_database};
use serde_json::{Value, json};
use server::client::Client;
use sync_core::audit::{Answer, AuditHeader, Cpna};
use sync_core::edit::Edit;
use sync_core::engine::{Engine, Side};
use sync_core::ids::DocumentId;
use sync_core::permissions::Author;

const KILLS: usize = 20;
const PASSWORD: &str = server::seed::DEMO_PASSWORD;

struct Server {
    url: String,
    dir: std::path::PathBuf,
    listen: String,
    child: Option<Child>,
    /// Kept open so the server can still print (a closed pipe would stop it).
    out: Option<BufReader<std::process::ChildStdout>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Server {
    fn start(&mut self) -> Result<()> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sqm"))
            .args(["--db", &self.url, "--data-dir"])
            .arg(&self.dir)
            .args(["serve", "--listen", &self.listen])
            .env("SQM_LOG", "error")
            .env_remove("SQM_JWT_SECRET")
            .stdout(Stdio::piped())
            .spawn()?;
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().context("stdout")?);
        out.read_line(&mut line)?;
        anyhow::ensure!(
            line.contains("serving at"),
            "the server did not start: {line:?}"
        );
        self.child = Some(child);
        self.out = Some(out);
        Ok(())
    }

    fn kill(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            let status = Command::new("kill")
                .args(["-KILL", &child.id().to_string()])
                .status()?;
            anyhow::ensure!(status.success());
            child.wait()?;
        }
        Ok(())
    }
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn post(
    http: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> Result<Value> {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await?;
    anyhow::ensure!(res.status().is_success(), "{}", res.status());
    Ok(res.json().await?)
}

/// One simulated tablet: who it is and where it syncs.
struct Tablet {
    n: usize,
    ws: String,
    token: String,
    device: String,
    author: Author,
    audit: DocumentId,
}

/// What every tablet reports to the test.
#[derive(Clone, Default)]
struct Tally {
    stop: Arc<AtomicBool>,
    /// Hashes of changes the server's heads covered.
    acked: Arc<Mutex<HashSet<String>>>,
    /// Changes made in all.
    made: Arc<AtomicU64>,
    /// Tablets connected now (a tablet counts itself out once it has read
    /// everything its dead socket delivered).
    online: Arc<AtomicU64>,
}

/// One tablet's loop: edit, sync, reconnect whenever the server dies.
async fn tablet(t: Tablet, engine: Engine, tally: Tally) -> Result<()> {
    let Tablet {
        n,
        ws,
        token,
        device,
        author,
        audit,
    } = t;
    let Tally {
        stop,
        acked,
        made: made_count,
        online,
    } = tally;
    let mut made: Vec<sync_core::automerge::ChangeHash> = Vec::new();
    let mut i = 0u64;
    let mut engine = Some(engine);
    while !stop.load(Ordering::Relaxed) {
        let Ok(socket) = Client::open(&ws, &token, &device).await else {
            // The server is down: wait for it.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let mut c = Client::attach(socket, engine.take().context("the engine")?).await;
        online.fetch_add(1, Ordering::SeqCst);
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let key = format!("sd.item_{}@P0{}", n, 2 + i % 3);
            let edit = Edit::SetResponse {
                key: key.parse()?,
                answer: Answer::Cpna(
                    [Cpna::Conform, Cpna::Partly, Cpna::NotConform][(i % 3) as usize],
                ),
                note: format!("tablet {n} edit {i}"),
                evidence: Vec::new(),
            };
            let sent = c.edit(audit, &edit, &author).await;
            if let Some(e) = c.engine.unacknowledged(&audit).last()
                && !made.contains(&e.hash)
            {
                made.push(e.hash);
                made_count.fetch_add(1, Ordering::Relaxed);
            }
            // Every frame read is looked at at once: what it acknowledged
            // is recorded before anything else happens.
            let alive = match sent {
                Ok(()) => c
                    .run_until(Duration::from_millis(30), |c| {
                        record_acks(c, &audit, &mut made, &acked);
                        false
                    })
                    .await
                    .is_ok(),
                Err(_) => false,
            };
            record_acks(&c, &audit, &mut made, &acked);
            if !alive {
                break;
            }
        }
        engine = Some(c.disconnect().await);
        online.fetch_sub(1, Ordering::SeqCst);
    }
    Ok(())
}

/// Records as acknowledged the changes made here that no longer wait for
/// the server's heads.
fn record_acks(
    c: &Client,
    audit: &DocumentId,
    made: &mut Vec<sync_core::automerge::ChangeHash>,
    acked: &Mutex<HashSet<String>>,
) {
    let waiting: HashSet<_> = c
        .engine
        .unacknowledged(audit)
        .iter()
        .map(|e| e.hash)
        .collect();
    if made.iter().all(|h| waiting.contains(h)) {
        return;
    }
    if let Ok(mut set) = acked.lock() {
        for h in made.iter().filter(|h| !waiting.contains(h)) {
            set.insert(h.to_string());
        }
    }
    made.retain(|h| waiting.contains(h));
}

async fn run(backend: Backend) -> Result<()> {
    let (url, dir, pg) = fresh_database(backend).await?;
    let seeded = Command::new(env!("CARGO_BIN_EXE_sqm"))
        .args(["--db", &url, "--data-dir"])
        .arg(&dir)
        .args(["seed", "demo"])
        .env("SQM_LOG", "error")
        .output()?;
    anyhow::ensure!(seeded.status.success(), "{seeded:?}");
    let listen = format!("127.0.0.1:{}", free_port()?);
    let mut server = Server {
        url: url.clone(),
        dir: dir.clone(),
        listen: listen.clone(),
        child: None,
        out: None,
    };
    server.start()?;
    let base = format!("http://{listen}");
    let ws = format!("ws://{listen}/api/v1/sync");
    let http = reqwest::Client::new();
    let db = server::db::Db::connect(&url).await?;

    // An audit all three auditors share; eight tablets among them.
    let rao = post(
        &http,
        format!("{base}/api/v1/auth/login"),
        None,
        json!({"username": "a.rao", "password": PASSWORD}),
    )
    .await?;
    let rao = rao["access_token"].as_str().context("token")?.to_owned();
    let planned = post(
        &http,
        format!("{base}/api/v1/admin/units/DEMO-I/audits"),
        Some(&rao),
        json!({"number": "IA/DEMO-I/2025-26/020", "scope": ["P02", "P03", "P04"], "planned_from": "2026-02-10",
            "planned_to": "2026-02-11", "template_version": 2, "lead": "k.iyer", "members": ["s.khan", "p.sharma"]}),
    )
    .await?;
    let audit: DocumentId = planned["id"].as_str().context("id")?.parse()?;
    let users = [
        "k.iyer", "s.khan", "p.sharma", "k.iyer", "s.khan", "p.sharma", "k.iyer", "s.khan",
    ];
    let mut tablets = Vec::new();
    for user in users {
        let t = post(
            &http,
            format!("{base}/api/v1/auth/login"),
            None,
            json!({"username": user, "password": PASSWORD}),
        )
        .await?;
        let token = t["access_token"].as_str().context("token")?.to_owned();
        let reg = post(
            &http,
            format!("{base}/api/v1/devices"),
            Some(&token),
            json!({"name": "durability"}),
        )
        .await?;
        let actor: sync_core::automerge::ActorId = reg["actor"]
            .as_str()
            .context("actor")?
            .parse()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let device = reg["device_id"].as_str().context("device")?.to_owned();
        tablets.push((user, token, device, actor));
    }
    let header = AuditHeader {
        unit: "DEMO-I".parse()?,
        number: "IA/DEMO-I/2025-26/020".into(),
        scope: vec!["P02".into(), "P03".into(), "P04".into()],
        template_version: 2,
        lead: "k.iyer".parse()?,
        team: vec!["k.iyer".parse()?, "s.khan".parse()?, "p.sharma".parse()?],
        start: "2026-02-10".parse()?,
        end: None,
    };
    let first = &tablets[0];
    let lead_author = server::access::author_of(&db, "k.iyer").await?;
    let mut lead = Client::connect(
        &ws,
        &first.1,
        &first.2,
        Engine::new(Side::Device(first.3.clone())),
    )
    .await?;
    lead.edit(audit, &Edit::CreateAudit(header), &lead_author)
        .await?;
    lead.edit(
        audit,
        &Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
        &lead_author,
    )
    .await?;
    anyhow::ensure!(lead.settle(Duration::from_secs(20)).await?);
    let lead_engine = lead.disconnect().await;

    let tally = Tally::default();
    let mut tasks = Vec::new();
    let mut lead_engine = Some(lead_engine);
    for (n, (user, token, device, actor)) in tablets.into_iter().enumerate() {
        let author = server::access::author_of(&db, user).await?;
        let engine = match lead_engine.take() {
            Some(e) => e,
            None => Engine::new(Side::Device(actor)),
        };
        // Everyone starts online with the audit.
        let socket = Client::open(&ws, &token, &device).await?;
        let mut c = Client::attach(socket, engine).await;
        // (The others already edit: wait for the audit, not for a quiet moment.)
        let ok = c
            .run_until(Duration::from_secs(20), |c| c.engine.doc(&audit).is_some())
            .await?;
        anyhow::ensure!(ok, "tablet {n} did not download the audit");
        let engine = c.disconnect().await;
        let t = Tablet {
            n,
            ws: ws.clone(),
            token,
            device,
            author,
            audit,
        };
        tasks.push(tokio::spawn(tablet(t, engine, tally.clone())));
    }
    for kill in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(300 + (kill as u64 * 137) % 500)).await;
        server.kill()?;
        // Every tablet reads what its dead socket still held, and so has
        // recorded every acknowledgement the server ever sent it; with the
        // server down, nothing can be uploaded again.
        let mut waited = 0;
        while tally.online.load(Ordering::SeqCst) > 0 {
            anyhow::ensure!(waited < 600, "a tablet never noticed the server died");
            tokio::time::sleep(Duration::from_millis(50)).await;
            waited += 1;
        }
        let acked: HashSet<String> = tally.acked.lock().map(|s| s.clone()).unwrap_or_default();
        let stored: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT hash FROM changes")
            .fetch_all(db.pool())
            .await?
            .into_iter()
            .collect();
        let missing: Vec<&String> = acked.difference(&stored).collect();
        assert!(
            missing.is_empty(),
            "after kill {}: {} acknowledged changes lost",
            kill + 1,
            missing.len()
        );
        verify(&url, &dir, kill + 1)?;
        server.start()?;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    tally.stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await??;
    }
    server.kill()?;
    let acked = tally.acked.lock().map(|s| s.clone()).unwrap_or_default();
    let stored: HashSet<String> = sqlx::query_scalar::<_, String>("SELECT hash FROM changes")
        .fetch_all(db.pool())
        .await?
        .into_iter()
        .collect();
    assert!(acked.is_subset(&stored), "acknowledged changes lost");
    assert!(
        acked.len() > 100,
        "too little happened to test anything: {} acknowledged of {}",
        acked.len(),
        tally.made.load(Ordering::Relaxed)
    );
    db.close().await;
    verify(&url, &dir, KILLS + 1)?;
    drop_database(&dir, pg.as_deref()).await;
    Ok(())
}

/// `sqm verify` on the database, with no server running.
fn verify(url: &str, dir: &std::path::Path, after: usize) -> Result<()> {
    let verify = Command::new(env!("CARGO_BIN_EXE_sqm"))
        .args(["--db", url, "--data-dir"])
        .arg(dir)
        .arg("verify")
        .env("SQM_LOG", "error")
        .output()?;
    anyhow::ensure!(
        verify.status.success(),
        "verify after stop {after}: {}",
        String::from_utf8_lossy(&verify.stdout)
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_twenty_sigkills_on_sqlite() -> Result<()> {
    run(Backend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_changes_survive_twenty_sigkills_on_postgres() -> Result<()> {
    run(Backend::Postgres).await
}
