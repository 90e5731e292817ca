//! The phases of a run, in order, each printing its line as it ends; the
//! reconnect and live figures go into the report.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::http::Http;
use super::report::{self, Report};
use super::setup::Layout;
use super::{Deadline, LoadArgs, Own};
use super::{baseline, day, download, live, reconnect, server, work};
use crate::db::Db;

async fn count(db: &Db, table: &str) -> Option<i64> {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .fetch_one(db.pool())
        .await
        .ok()
}

/// The server's gauge `name` (its metrics are served to this machine).
async fn gauge(http: &Http, name: &str) -> Option<usize> {
    let (_, body) = http.call("GET", "/metrics", None, None).await.ok()?;
    body.as_str()?
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))?
        .trim()
        .parse()
        .ok()
}

/// Waits, at most until `until`, for the open documents to go cold, then
/// reads the server's memory: (MiB, documents cold).
async fn quiet_memory(http: &Http, pid: u32, open: usize, until: Deadline) -> Option<(f64, usize)> {
    let mut cold = 0;
    while !until.passed() {
        cold = gauge(http, "sqm_sync_cold_documents").await.unwrap_or(0);
        if cold >= open {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let low = settled_rss(pid, Duration::from_secs(3), Duration::from_secs(20)).await?;
    Some((low, cold))
}

/// The server's resident memory once it stops falling: freed memory goes
/// back to the system over the next seconds, so it is read until it has not
/// fallen for `quiet` (at most for `most`); MiB.
async fn settled_rss(pid: u32, quiet: Duration, most: Duration) -> Option<f64> {
    let mut low = server::rss_mib(pid)?;
    let mut since = Instant::now();
    let started = Instant::now();
    while since.elapsed() < quiet && started.elapsed() < most {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = server::rss_mib(pid)?;
        if now < low - 0.5 {
            since = Instant::now();
        }
        low = low.min(now);
    }
    Some(low)
}

/// Runs download, offline day, baselines, reconnect and live.
pub(super) async fn run(
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
    // What the server holds with every tablet signed in and no document
    // open, once what the sign-ins freed has gone back to the system.
    let signed_in_rss = match own {
        Some(o) => settled_rss(o.pid(), Duration::from_secs(2), Duration::from_secs(10)).await,
        None => None,
    };
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
    report.validate_us = base.validate_us_per_change();
    report.plain_sync_bytes = base.sync_bytes;
    if let Some(first) = base.validator_refusals.first() {
        report.failures.push(format!(
            "the validator refused {} batches of the day, e.g. {first}",
            base.validator_refusals.len()
        ));
    }
    if base.sync_mismatches > 0 {
        report.failures.push(format!(
            "plain Automerge sync left {} copies apart",
            base.sync_mismatches
        ));
    }
    println!(
        "baselines: {} changes applied by plain Automerge in {:.3} s, judged and applied by the validator in {:.3} s; plain sync of the same: {:.2} MB in {} messages",
        base.changes,
        base.apply.as_secs_f64(),
        base.validate.as_secs_f64(),
        base.sync_bytes as f64 / 1e6,
        base.sync_messages
    );

    let stored_before = match own {
        Some(o) => count(&o.db, "changes").await,
        None => None,
    };
    let sampler = own.map(|o| server::RssSampler::start(o.pid()));
    let cpu_before = own.and_then(|o| server::cpu_seconds(o.pid(), ticks));
    let tool_before = server::own_cpu_seconds(ticks);
    let converge = match args.converge_timeout {
        Some(s) => deadline.within(Duration::from_secs(s)),
        // Leave time for the checks, the live phase and the report.
        None => {
            let left = deadline.left();
            deadline.within(left.saturating_sub((left / 5).min(Duration::from_secs(60))))
        }
    };
    let (clients, rc) = reconnect::reconnect(http, &mut tablets, converge).await;
    let cpu_after = own.and_then(|o| server::cpu_seconds(o.pid(), ticks));
    let tool_after = server::own_cpu_seconds(ticks);
    if let (Some(base), Some(sampler)) = (signed_in_rss, sampler) {
        report.memory = Some(report::Memory {
            signed_in_mib: base,
            reconnect_peak_mib: sampler.stop().await,
            open_documents: layout.audits.len(),
            quiet: None,
        });
    }
    report.server_cpu_s = cpu_before.zip(cpu_after).map(|(a, b)| b - a);
    report.tool_cpu_s = tool_before.zip(tool_after).map(|(a, b)| b - a);
    report.converged = rc.converged;
    report.seconds = rc.seconds;
    (report.bytes_up, report.bytes_down) = rc.bytes;
    report.frames = rc.frames;
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

    let Some(clients) = clients.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(());
    };
    let (lv, clients) = live::live(
        http,
        &tablets,
        clients,
        &checklist,
        args.live_samples,
        &layout.idle,
        args.idle_devices,
        deadline,
    )
    .await?;
    report.live_ms = lv.samples_ms;
    report.live_lost = lv.lost;
    report.live_connections = lv.connections;
    // Every tablet still connected and quiet: the documents go cold.
    if let (Some(o), Some(m)) = (own, report.memory.as_mut()) {
        // At most half of what the run has left: the report must still come.
        let most = Duration::from_secs(args.cool_after + 30).min(deadline.left() / 2);
        let wait = deadline.within(most);
        m.quiet = quiet_memory(http, o.pid(), m.open_documents, wait).await;
    }
    for (t, c) in tablets.iter_mut().zip(clients) {
        t.park(c).await;
    }
    Ok(())
}
