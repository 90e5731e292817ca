//! `sqm load`: simulates tablets as real WebSocket clients ([`crate::client`])
//! and measures a day of offline audit work reaching the server at once.
//!
//! Phases: setup ([`setup`]: accounts and planned audits), download
//! ([`download`]: sign in, create the audits online, partners receive them),
//! offline day ([`day`]: about 67 changes per audit), baselines ([`baseline`]:
//! plain Automerge apply and sync on the same changes), reconnect
//! ([`reconnect`]: every tablet at once until all hold the server's heads),
//! live ([`live`]: single edits reaching the partner). Unless `--server` is
//! given the tool starts its own server ([`server`]) as a child process on a
//! fresh database, so that the server's CPU time and peak memory can be read.

mod baseline;
mod day;
mod download;
mod http;
mod live;
mod reconnect;
mod report;
mod server;
mod setup;
mod tablet;
mod work;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::config::DataArgs;
use crate::db::Db;
use crate::db::accounts::random_id;
use http::Http;
use report::Report;
use server::{FreshDb, ServerProcess};
use setup::Layout;

/// `sqm load`'s options.
#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Tablets to simulate (one auditor account and device each).
    #[arg(long, default_value_t = 50)]
    pub tablets: usize,
    /// Audits each tablet leads (its partner tablet is on their teams).
    #[arg(long, default_value_t = 24)]
    pub docs_per_tablet: usize,
    /// Changes made offline per audit, lead and partner together.
    #[arg(long, default_value_t = 67)]
    pub changes_per_doc: usize,
    /// A running server's base URL (http://host:port/); default: start one on a fresh database.
    #[arg(long)]
    pub server: Option<String>,
    /// The admin who makes the load accounts on a running server.
    #[arg(long, default_value = "sqm.admin")]
    pub admin_user: String,
    /// The admin's password.
    #[arg(long, env = "SQM_ADMIN_PASSWORD", default_value = crate::seed::DEMO_PASSWORD)]
    pub admin_password: String,
    /// Extra devices that each hold one audit and only listen during the live phase.
    #[arg(long, default_value_t = 0)]
    pub idle_devices: usize,
    /// Live edits to time.
    #[arg(long, default_value_t = 200)]
    pub live_samples: usize,
    /// Give up after this many seconds (the whole run).
    #[arg(long, default_value_t = 1800)]
    pub timeout: u64,
    /// Keep the own server's database and folder.
    #[arg(long)]
    pub keep: bool,
}

/// When the run must end.
#[derive(Clone, Copy, Debug)]
pub struct Deadline(Instant);

impl Deadline {
    /// Time left.
    pub fn left(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Whether it has passed.
    pub fn passed(&self) -> bool {
        Instant::now() >= self.0
    }
}

/// The tool's own server.
#[derive(Debug)]
struct Own {
    fresh: FreshDb,
    db: Db,
    server: ServerProcess,
}

/// Runs the load test and prints its report; fails if a tablet did not converge.
pub async fn run(data: &DataArgs, args: LoadArgs) -> Result<ExitCode> {
    anyhow::ensure!(
        args.tablets >= 1 && args.docs_per_tablet >= 1 && args.changes_per_doc >= 1,
        "--tablets, --docs-per-tablet and --changes-per-doc must be at least 1"
    );
    let deadline = Deadline(Instant::now() + Duration::from_secs(args.timeout));
    let ticks = server::clock_ticks();
    let tag = match args.server {
        Some(_) => format!("{}.", &random_id()[..4]),
        None => String::new(),
    };
    let layout = Layout::new(args.tablets, args.docs_per_tablet, args.idle_devices, &tag);
    let started = Instant::now();
    let (http, own) = match &args.server {
        None => {
            let fresh = FreshDb::create(data.db.as_deref()).await?;
            match start_own(&fresh, &layout).await {
                Ok((db, server)) => {
                    let http = Http::parse(&server.base)?;
                    (http, Some(Own { fresh, db, server }))
                }
                Err(e) => {
                    fresh.remove().await;
                    return Err(e);
                }
            }
        }
        Some(url) => {
            let http = Http::parse(url)?;
            setup::through_api(&http, &args.admin_user, &args.admin_password, &layout).await?;
            (http, None)
        }
    };
    println!(
        "setup: {} on {}; {} tablets, {} audits, {} idle accounts ({:.1} s)",
        match &own {
            Some(o) => format!("own server (pid {})", o.server.pid),
            None => "server".into(),
        },
        http.base(),
        layout.tablets.len(),
        layout.audits.len(),
        layout.idle.len(),
        started.elapsed().as_secs_f64()
    );
    let mut report = Report {
        tablets: args.tablets,
        ..Report::default()
    };
    let phases = phases(
        &args,
        &http,
        own.as_ref(),
        &layout,
        ticks,
        deadline,
        &mut report,
    );
    match tokio::time::timeout(deadline.left(), phases).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => report.failures.push(format!("{e:#}")),
        Err(_) => report.failures.push(format!(
            "the run took longer than --timeout {} s",
            args.timeout
        )),
    }
    if let Some(own) = own {
        report.peak_rss_mib = server::peak_rss_mib(own.server.pid);
        own.server.stop().await;
        own.db.close().await;
        if args.keep {
            println!("kept: {} ({})", own.fresh.dir.display(), own.fresh.url);
        } else {
            own.fresh.remove().await;
        }
    }
    if !report.failures.is_empty() {
        report.converged = false;
    }
    for line in report.lines() {
        println!("{line}");
    }
    println!("{}", report.record());
    Ok(if report.converged {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

async fn start_own(fresh: &FreshDb, layout: &Layout) -> Result<(Db, ServerProcess)> {
    let db = Db::connect(&fresh.url).await?;
    db.migrate().await?;
    setup::into_database(&db, layout).await?;
    let server = ServerProcess::start(fresh).await?;
    Ok((db, server))
}

async fn count(db: &Db, table: &str) -> Option<i64> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(db.pool())
        .await
        .ok()
}

async fn phases(
    args: &LoadArgs,
    http: &Http,
    own: Option<&Own>,
    layout: &Layout,
    ticks: f64,
    deadline: Deadline,
    report: &mut Report,
) -> Result<()> {
    let started = Instant::now();
    let tablets = download::sign_in_all(http, &layout.tablets).await?;
    let (_, header) = tablets[0]
        .leads
        .first()
        .context("tablet 1 leads no audit")?;
    let version = i64::try_from(header.template_version)?;
    let checklist = work::Checklist::from_bundle(&tablets[0].bundle, version, &header.scope)?;
    let checklist = Arc::new(checklist);
    let (tablets, dl) = download::download(http, tablets, deadline).await?;
    println!(
        "download: {} audits created online and received by their partners in {:.1} s ({:.2} MB on the wire, sign-in included: {:.1} s)",
        dl.created,
        dl.seconds,
        dl.bytes as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );

    let (tablets, mut day) =
        day::offline_day(tablets, checklist.clone(), args.changes_per_doc).await?;
    report.changes = day.changes();
    println!(
        "offline day: {} changes ({} by leads, {} by partners on the same audits) in {:.1} s",
        day.changes(),
        day.lead_changes,
        day.partner_changes,
        day.seconds
    );
    if day.refused > 0 {
        report.failures.push(format!(
            "{} edits were refused on the tablets, e.g. {}",
            day.refused,
            day.first_refusal.unwrap_or_default()
        ));
    }

    let before = std::mem::take(&mut day.before);
    let (mut tablets, base) = tokio::task::spawn_blocking(move || {
        let base = baseline::measure(&tablets, &before);
        (tablets, base)
    })
    .await?;
    let base = base?;
    report.raw_apply_us = base.apply_us_per_change();
    report.plain_sync_bytes = base.sync_bytes;
    if base.sync_mismatches > 0 {
        report.failures.push(format!(
            "plain Automerge sync left {} copies apart",
            base.sync_mismatches
        ));
    }
    println!(
        "baselines: {} changes applied by plain Automerge in {:.3} s; plain sync of the same: {:.2} MB",
        base.changes,
        base.apply.as_secs_f64(),
        base.sync_bytes as f64 / 1e6
    );

    let stored_before = match own {
        Some(o) => count(&o.db, "changes").await,
        None => None,
    };
    let cpu_before = own.and_then(|o| server::cpu_seconds(o.server.pid, ticks));
    let tool_before = server::own_cpu_seconds(ticks);
    let (clients, rc) = reconnect::reconnect(http, &mut tablets, deadline).await;
    let cpu_after = own.and_then(|o| server::cpu_seconds(o.server.pid, ticks));
    let tool_after = server::own_cpu_seconds(ticks);
    report.server_cpu_s = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    report.tool_cpu_s = tool_before.zip(tool_after).map(|(a, b)| b - a);
    report.converged = rc.converged;
    report.seconds = rc.seconds;
    (report.bytes_up, report.bytes_down) = rc.bytes;
    report.failures.extend(rc.failures);
    if rc.rejections > 0 {
        report.failures.push(format!(
            "the server refused changes {} times",
            rc.rejections
        ));
    }
    if let Some(o) = own {
        let wrong = reconnect::verify_with_db(&o.db, &tablets, &clients).await?;
        if !wrong.is_empty() {
            report.converged = false;
            report.failures.push(format!(
                "{} documents differ from the database, e.g. {}",
                wrong.len(),
                wrong[0]
            ));
        }
        let after = count(&o.db, "changes").await;
        report.stored = stored_before.zip(after).map(|(a, b)| b - a);
        report.quarantined = count(&o.db, "quarantine").await;
    }

    let Some(mut clients) = clients.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(());
    };
    let lv = live::live(
        http,
        &tablets,
        &mut clients,
        &checklist,
        args.live_samples,
        &layout.idle,
        args.idle_devices,
        deadline,
        own.map(|o| &o.db),
    )
    .await?;
    report.live_ms = lv.samples_ms;
    report.live_lost = lv.lost;
    report.live_connections = lv.connections;
    for (t, c) in tablets.iter_mut().zip(clients) {
        t.park(c).await;
    }
    Ok(())
}
