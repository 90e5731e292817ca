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

pub mod baseline;
mod day;
mod download;
mod http;
mod live;
mod phases;
mod reconnect;
mod report;
pub mod server;
mod setup;
mod tablet;
mod work;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;

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
    /// Give up waiting for the reconnect phase to converge after this many
    /// seconds (default: what the whole run has left, less a fifth, at most a
    /// minute, for the checks, the live phase and the report).
    #[arg(long)]
    pub converge_timeout: Option<u64>,
    /// Keep the own server's database and folder.
    #[arg(long)]
    pub keep: bool,
    /// The own server's `--cool-after` (seconds; `sqm serve`'s default). After
    /// the live phase the run waits this long, and up to 30 s more, for the
    /// open documents to go cold, and reads the server's memory then.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub cool_after: u64,
    /// The own server's `--hot-documents` (default: `sqm serve`'s).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub hot_documents: Option<u64>,
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

    /// The earlier of this and `within` from now.
    pub fn within(&self, within: Duration) -> Deadline {
        Deadline(self.0.min(Instant::now() + within))
    }
}

/// The tool's own server.
#[derive(Debug)]
struct Own {
    fresh: FreshDb,
    db: Db,
    server: ServerProcess,
}

impl Own {
    fn pid(&self) -> u32 {
        self.server.pid
    }
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
            match start_own(&fresh, &layout, args.cool_after, args.hot_documents).await {
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
    let phases = phases::run(
        &args,
        &http,
        own.as_ref(),
        &layout,
        ticks,
        deadline,
        &mut report,
    );
    // Problems found along the way are reported; these end the run unconverged.
    let mut fatal = true;
    match tokio::time::timeout(deadline.left(), phases).await {
        Ok(Ok(())) => fatal = false,
        Ok(Err(e)) => report.failures.push(format!("{e:#}")),
        Err(_) => report.failures.push(format!(
            "the run took longer than --timeout {} s",
            args.timeout
        )),
    }
    if let Some(own) = own {
        report.peak_rss_mib = server::peak_rss_mib(own.server.pid);
        let log = own.fresh.dir.join("server.log");
        if report.peak_rss_mib.is_none() {
            fatal = true;
            report.failures.push(format!(
                "the server process had exited; see {}",
                log.display()
            ));
        }
        own.server.stop().await;
        own.db.close().await;
        if args.keep || !report.failures.is_empty() {
            println!(
                "kept: {} ({}; server log: {})",
                own.fresh.dir.display(),
                own.fresh.url,
                log.display()
            );
        } else {
            own.fresh.remove().await;
        }
    }
    if fatal {
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

async fn start_own(
    fresh: &FreshDb,
    layout: &Layout,
    cool_after: u64,
    hot_documents: Option<u64>,
) -> Result<(Db, ServerProcess)> {
    let db = Db::connect(&fresh.url).await?;
    db.migrate().await?;
    setup::into_database(&db, layout).await?;
    let server = ServerProcess::start(fresh, cool_after, hot_documents).await?;
    Ok((db, server))
}
