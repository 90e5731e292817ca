//! The `sqm` command line: `serve`, `migrate`, `user`, `seed demo`, `verify`.
//! Every subcommand takes `--db` (or `DATABASE_URL`) and `--data-dir`.

use std::io::BufRead;
use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

use crate::auth::Auth;
use crate::auth::password::hash_blocking;
use crate::config::{Config, DataArgs, TrustedProxy, signing_key};
use crate::db::Db;
use crate::db::accounts::{self, Assignment, User, random_id};
use crate::http::{self, AppState};
use crate::secret::Secret;

#[derive(Debug, Parser)]
#[command(
    name = "sqm",
    version,
    about = "SQM Field Audit: the server and its tools"
)]
struct Cli {
    #[command(flatten)]
    data: DataArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API (migrates the database first).
    Serve(ServeArgs),
    /// Apply the database migrations.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Load data.
    Seed {
        #[command(subcommand)]
        what: SeedWhat,
    },
    /// Publish checklist versions.
    Template {
        #[command(subcommand)]
        command: TemplateCommand,
    },
    /// Check the database's integrity: every change's bytes against its hash,
    /// and the receipts' hash chain.
    Verify,
    /// Fold documents' changes into snapshots (each document in one transaction).
    Compact {
        /// Only this document (default: every document with changes outside its snapshot).
        #[arg(long)]
        doc: Option<String>,
        /// Only documents with at least this many changes outside their snapshot.
        #[arg(long, default_value_t = 1)]
        min: i64,
    },
    /// Print a report of a unit and the units below it (as the API gives it).
    Report(ReportArgs),
    /// Simulate tablets against a server: a day of offline work, everyone
    /// reconnecting at once, then live edits; prints the figures.
    Load(crate::load::LoadArgs),
}

#[derive(Debug, clap::Args)]
struct ReportArgs {
    /// The report: nc-ageing, programme-adherence or quarantine.
    name: String,
    /// The unit (the units below it are included).
    #[arg(long)]
    unit: String,
    /// The day ages and overdue days are counted to, YYYY-MM-DD (default: today).
    #[arg(long)]
    as_of: Option<String>,
    /// json, csv or html.
    #[arg(long, default_value = "json")]
    format: String,
    /// Only this process.
    #[arg(long)]
    process: Option<String>,
    /// Only this clause and the clauses under it.
    #[arg(long)]
    clause: Option<String>,
    /// Only major or minor NCs.
    #[arg(long)]
    class: Option<String>,
    /// Only the processes of this owner.
    #[arg(long)]
    owner: Option<String>,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SQM_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Web origins allowed to open the sync socket, comma-separated.
    #[arg(
        long = "allowed-origin",
        env = "SQM_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    allowed_origins: Vec<String>,
    /// Load the demo unit before serving, and print its logins.
    #[arg(long)]
    demo: bool,
    /// Seconds a document every connection is in sync with stays loaded
    /// after it was last touched; then it is kept saved (cold), a few KiB
    /// instead of tens, and loaded again by the next message about it.
    #[arg(long, env = "SQM_COOL_AFTER", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86_400))]
    cool_after: u64,
    /// Documents kept loaded at most; past this, the least recently touched
    /// of those in sync go cold at once, and a message about a cold document
    /// waits (at most 5 s) until one of those loaded is in sync and goes cold.
    #[arg(long, env = "SQM_HOT_DOCUMENTS", default_value_t = crate::sync::HOT_DOCUMENTS, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    hot_documents: u64,
    /// Failed logins allowed per account and per client address in an hour;
    /// past it, 429. Each login counts before its password is checked (a
    /// right password is then taken back), so concurrent guesses count too.
    #[arg(long, env = "SQM_LOGIN_FAILURES", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    login_failures: u64,
    /// Password hashes (logins, new passwords) that may wait for a hashing
    /// thread; past it, 503 with Retry-After.
    #[arg(long, env = "SQM_HASH_QUEUE", default_value_t = 64, value_parser = clap::value_parser!(u64).range(0..=100_000))]
    hash_queue: u64,
    /// Reverse proxies whose X-Forwarded-For names the client: addresses or
    /// ranges (10.0.0.0/8), comma-separated. From any other peer the header
    /// is ignored; without any, the peer's address is the client's.
    #[arg(
        long = "trusted-proxy",
        env = "SQM_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    trusted_proxies: Vec<TrustedProxy>,
    /// Bytes of files each user may have stored: the files they uploaded and
    /// their unfinished uploads; past it, 507.
    #[arg(long, env = "SQM_BLOB_QUOTA", default_value_t = 2 * 1024 * 1024 * 1024)]
    blob_quota: u64,
    /// Seconds an unfinished upload is kept after its last part; then it is
    /// dropped and starts again from its first byte.
    #[arg(long, env = "SQM_UPLOAD_TTL", default_value_t = 3 * 24 * 3600, value_parser = clap::value_parser!(u64).range(1..))]
    upload_ttl: u64,
    /// A build of the browser client (`cargo xtask pwa` makes one), served
    /// at `/`; without it the server offers the API alone.
    #[arg(long, env = "SQM_WEB_DIR")]
    web: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from SQM_PASSWORD or the first line of stdin.
    Add {
        /// Login name (lowercase letters, digits, '.', '_', '-').
        username: String,
        /// The name people see.
        #[arg(long)]
        name: String,
        /// The post, e.g. "Superintendent".
        #[arg(long, default_value = "")]
        designation: String,
    },
    /// Set a new password (read as for `add`).
    Passwd {
        /// Login name.
        username: String,
    },
    /// Disable an account: its sessions end at once.
    Disable {
        /// Login name.
        username: String,
    },
    /// Enable a disabled account.
    Enable {
        /// Login name.
        username: String,
    },
    /// Give an account a role in a unit, by an office order.
    Grant {
        /// Login name.
        username: String,
        /// The unit's code.
        #[arg(long)]
        unit: String,
        /// auditor, process_owner, nodal_officer or admin.
        #[arg(long)]
        role: String,
        /// The office order's number and date.
        #[arg(long)]
        office_order: String,
        /// First day in force (YYYY-MM-DD; default today).
        #[arg(long)]
        from: Option<String>,
    },
    /// List every account.
    List,
}

#[derive(Debug, Subcommand)]
enum TemplateCommand {
    /// Publish a new checklist version from a JSON file (the format of
    /// templates/sqm-03-v2.json), with the amendment it implements; every
    /// mistake is printed as FILE:LINE: what is wrong. Audits keep the
    /// version they pinned.
    Publish {
        /// The template file.
        file: std::path::PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum SeedWhat {
    /// The fictional demo unit: people, roles, processes, templates, programme,
    /// three audits with their findings and NCs, and a management review.
    Demo,
}

/// Runs the command line; the exit code says whether it worked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("sqm: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("sqm: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The log filter when `SQM_LOG` is unset. Automerge wraps loading and
/// column parsing in info-level spans: at info they would be built (their
/// arguments formatted) for every document a device sends, a few percent of
/// the sync hub's time, for lines nobody reads.
const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn,automerge=warn";

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SQM_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn publish_template(data: &DataArgs, file: &std::path::Path) -> Result<ExitCode> {
    use crate::templates::{MAX_FILE, PublishError};
    let name = file.display();
    let size = std::fs::metadata(file)
        .map_err(|e| anyhow::anyhow!("{name}: {e}"))?
        .len();
    if size > MAX_FILE as u64 {
        eprintln!("{name}: the file is {size} bytes; a template may be at most {MAX_FILE} bytes");
        return Ok(ExitCode::FAILURE);
    }
    let text = std::fs::read_to_string(file).map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
    let db = open(data).await?;
    match crate::templates::publish(&db, &text, "sqm template publish").await {
        Ok(p) => {
            println!(
                "Published checklist version {} ({} items){}.",
                p.template.version,
                p.template.items.len(),
                p.amendment
                    .map(|a| format!(", implementing amendment {}", a.id))
                    .unwrap_or_default()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(PublishError::Invalid(mistakes)) => {
            for m in &mistakes {
                eprintln!("{name}:{}: {}", m.line, m.message);
            }
            eprintln!("Nothing was published.");
            Ok(ExitCode::FAILURE)
        }
        Err(e @ (PublishError::Exists(_) | PublishError::AmendmentExists(_))) => {
            eprintln!("{name}: {e}; nothing was published.");
            Ok(ExitCode::FAILURE)
        }
        Err(PublishError::Db(e)) => Err(e.into()),
    }
}

async fn open(data: &DataArgs) -> Result<Db> {
    let url = data.database_url();
    let db = Db::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&url)))?;
    db.migrate().await.context("cannot migrate the database")?;
    Ok(db)
}

/// A database URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Serve(args) => serve(&cli.data, args).await,
        Command::Migrate => {
            open(&cli.data).await?;
            println!("The database is up to date.");
            Ok(ExitCode::SUCCESS)
        }
        Command::User { command } => user(&cli.data, command).await,
        Command::Seed {
            what: SeedWhat::Demo,
        } => {
            let db = open(&cli.data).await?;
            let report = crate::seed::demo(&db).await?;
            println!("{report}");
            print_logins();
            Ok(ExitCode::SUCCESS)
        }
        Command::Template {
            command: TemplateCommand::Publish { file },
        } => publish_template(&cli.data, &file).await,
        Command::Load(args) => crate::load::run(&cli.data, args).await,
        Command::Compact { doc, min } => {
            let db = open(&cli.data).await?;
            let docs = match doc {
                Some(d) => vec![d.parse().map_err(|e| anyhow::anyhow!("--doc: {e}"))?],
                None => crate::compact::candidates(&db, min).await?,
            };
            let mut folded = 0;
            for id in &docs {
                folded += crate::compact::compact(&db, id).await?.folded;
            }
            println!(
                "Compacted {} documents: {folded} changes folded into snapshots.",
                docs.len()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Report(args) => {
            let db = open(&cli.data).await?;
            print!("{}", report(&db, args).await?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify => {
            let db = open(&cli.data).await?;
            let report = crate::verify::verify(&db).await?;
            print!("{report}");
            Ok(if report.ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// A report as `sqm report` prints it: the same as the API's.
async fn report(db: &Db, args: ReportArgs) -> Result<String> {
    fn one<T>(flag: &str, v: Option<String>) -> Result<Option<T>>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        v.map(|s| s.parse().map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
            .transpose()
    }
    let report: crate::reports::Report = args.name.parse()?;
    let unit: sync_core::ids::UnitCode = args
        .unit
        .parse()
        .map_err(|e| anyhow::anyhow!("--unit: {e}"))?;
    let units = crate::db::reference::units(db).await?;
    if !units.iter().any(|u| u.code == unit.as_str()) {
        anyhow::bail!("--unit: there is no unit {unit}");
    }
    let format: crate::reports::Format = args
        .format
        .parse()
        .map_err(|e| anyhow::anyhow!("--format: {e}"))?;
    let scope = crate::reports::Scope {
        units: crate::db::reference::subtree(&units, unit.as_str()),
        as_of: one("as-of", args.as_of)?.unwrap_or_else(crate::access::today),
        filters: crate::reports::Filters {
            process: one("process", args.process)?,
            clause: one("clause", args.clause)?,
            class: one("class", args.class)?,
            owner: one("owner", args.owner)?,
        },
    };
    report.check(&scope.filters)?;
    Ok(report.run(db, &scope, format).await?)
}

fn print_logins() {
    println!(
        "Demo logins (password for all: {}):",
        crate::seed::DEMO_PASSWORD
    );
    for (username, what) in crate::seed::DEMO_LOGINS {
        println!("  {username:<12} {what}");
    }
}

async fn serve(data: &DataArgs, args: ServeArgs) -> Result<ExitCode> {
    let db = open(data).await?;
    if args.demo {
        let report = crate::seed::demo(&db).await?;
        tracing::info!("{report}");
    }
    let key = signing_key(&data.data_dir)?;
    let metrics_token = std::env::var("SQM_METRICS_TOKEN").ok().map(Secret::from);
    let mut config = Config::new(args.listen);
    config.allowed_origins = args.allowed_origins;
    config.metrics_token = metrics_token;
    config.sync.cool_after = std::time::Duration::from_secs(args.cool_after);
    config.sync.hot_documents = usize::try_from(args.hot_documents)?;
    config.login.max_failures = usize::try_from(args.login_failures)?;
    config.login.hash_queue = usize::try_from(args.hash_queue)?;
    config.trusted_proxies = args.trusted_proxies;
    config.limits.blob_quota_bytes = args.blob_quota;
    config.limits.upload_ttl = std::time::Duration::from_secs(args.upload_ttl);
    if let Some(dir) = &args.web {
        let web = crate::http::web::WebFiles::read(dir)?;
        tracing::info!(files = web.len(), dir = %dir.display(), "serving the browser client");
        config.web = Some(std::sync::Arc::new(web));
    }
    let auth = Auth::with_limits(&key, &config.login)?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let state = AppState::new(db.clone(), auth, config);
    println!(
        "SQM Field Audit is serving at http://{addr}/ (database: {})",
        redact(&data.database_url())
    );
    if args.demo {
        print_logins();
    }
    http::serve(listener, state, shutdown_signal()).await?;
    db.close().await;
    println!("Stopped: every request in flight was answered.");
    Ok(ExitCode::SUCCESS)
}

/// Completes on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}

fn read_password() -> Result<Secret> {
    if let Ok(p) = std::env::var("SQM_PASSWORD") {
        return Ok(Secret::from(p));
    }
    eprintln!("Password (one line on stdin):");
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    let line = line.trim_end_matches(['\r', '\n']).to_owned();
    if line.is_empty() {
        bail!("no password given: set SQM_PASSWORD or write it on stdin");
    }
    Ok(Secret::from(line))
}

async fn user(data: &DataArgs, command: UserCommand) -> Result<ExitCode> {
    let db = open(data).await?;
    match command {
        UserCommand::Add {
            username,
            name,
            designation,
        } => {
            let user = User {
                username: username
                    .parse()
                    .map_err(|e| anyhow::anyhow!("username: {e}"))?,
                display_name: name,
                designation,
                disabled_at: None,
            };
            let password = read_password()?;
            let hash = tokio::task::spawn_blocking(move || hash_blocking(&password)).await??;
            let mut tx = db.begin().await?;
            if !accounts::insert_user(&mut tx, &user, &hash).await? {
                bail!("there is already an account named {}", user.username);
            }
            tx.commit().await?;
            println!("Created {}.", user.username);
        }
        UserCommand::Passwd { username } => {
            let password = read_password()?;
            let hash = tokio::task::spawn_blocking(move || hash_blocking(&password)).await??;
            if !accounts::set_password(&db, &username, &hash).await? {
                bail!("there is no account named {username}");
            }
            println!("Password set for {username}.");
        }
        UserCommand::Disable { username } => {
            if !accounts::set_disabled(&db, &username, true).await? {
                bail!("there is no account named {username}");
            }
            println!("Disabled {username}; their sessions have ended.");
        }
        UserCommand::Enable { username } => {
            if !accounts::set_disabled(&db, &username, false).await? {
                bail!("there is no account named {username}");
            }
            println!("Enabled {username}.");
        }
        UserCommand::Grant {
            username,
            unit,
            role,
            office_order,
            from,
        } => {
            let assignment = Assignment {
                id: random_id(),
                username: username
                    .parse()
                    .map_err(|e| anyhow::anyhow!("username: {e}"))?,
                unit: unit.parse().map_err(|e| anyhow::anyhow!("unit: {e}"))?,
                role: role.parse().map_err(|e| anyhow::anyhow!("role: {e}"))?,
                valid_from: match from {
                    Some(d) => d.parse().map_err(|e| anyhow::anyhow!("from: {e}"))?,
                    None => crate::access::today(),
                },
                valid_until: None,
                office_order,
            };
            if accounts::find_user(&db, assignment.username.as_str())
                .await?
                .is_none()
            {
                bail!("there is no account named {}", assignment.username);
            }
            let units = crate::db::reference::units(&db).await?;
            if !units.iter().any(|u| u.code == assignment.unit.as_str()) {
                bail!("there is no unit {}", assignment.unit);
            }
            let mut tx = db.begin().await?;
            accounts::insert_assignment(&mut tx, &assignment, "sqm user grant").await?;
            tx.commit().await?;
            println!(
                "{} is {} in {} from {}.",
                assignment.username,
                assignment.role,
                assignment.unit,
                assignment.valid_from.display()
            );
        }
        UserCommand::List => {
            for u in accounts::list_users(&db).await? {
                let state = if u.disabled_at.is_some() {
                    "disabled"
                } else {
                    "active"
                };
                println!(
                    "{:<16} {:<8} {} ({})",
                    u.username, state, u.display_name, u.designation
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
