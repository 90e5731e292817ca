//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz
//! targets of `fuzz/` (libFuzzer, nightly toolchain) for a fixed time each
//! and reports what libFuzzer measured.
//!
//! cargo-fuzz is installed if `cargo +nightly fuzz --version` fails. Build
//! output goes to `<target dir>/fuzz/`, and so does the corpus libFuzzer
//! grows: the committed seeds in `fuzz/corpus/<target>/` are only read.
//! Any crash, timeout or out-of-memory input is copied to
//! `tests/fixtures/fuzz/<target>/`, where `cargo test` replays it, and the
//! command fails.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// Every target, in the order they run.
const TARGETS: &[&str] = &[
    "envelope",
    "engine_frame",
    "validate",
    "load",
    "login_json",
    "jwt",
];

/// Seconds per target when none are given.
const DEFAULT_SECONDS: u64 = 60;

/// What to run.
#[derive(Debug)]
pub(crate) struct Options {
    seconds: u64,
    targets: Vec<&'static str>,
}

impl Options {
    pub(crate) fn parse(args: &[String]) -> Result<Options> {
        let mut seconds = DEFAULT_SECONDS;
        let mut targets = Vec::new();
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            if let Some(value) = arg.strip_prefix("--seconds=") {
                seconds = parse_seconds(value)?;
            } else if arg == "--seconds" {
                let value = args.next().context("--seconds needs a number")?;
                seconds = parse_seconds(value)?;
            } else if let Some(target) = TARGETS.iter().find(|t| **t == arg.as_str()) {
                targets.push(*target);
            } else {
                bail!(
                    "unknown fuzz target or option `{arg}` (targets: {})",
                    TARGETS.join(", ")
                );
            }
        }
        if targets.is_empty() {
            targets = TARGETS.to_vec();
        }
        Ok(Options { seconds, targets })
    }
}

fn parse_seconds(value: &str) -> Result<u64> {
    match value.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => bail!("--seconds takes a whole number of seconds above 0, got `{value}`"),
    }
}

/// What libFuzzer reported for one target.
#[derive(Debug, Default)]
struct Report {
    target: &'static str,
    executions: Option<u64>,
    exec_per_sec: Option<u64>,
    /// Edges covered (`cov:`) and features (`ft:`) at the end.
    coverage: Option<u64>,
    features: Option<u64>,
    /// Inputs the run added to the corpus.
    new_units: Option<u64>,
    peak_rss_mb: Option<u64>,
    /// Inputs that crashed, stalled or ran out of memory, as kept in the fixtures.
    findings: Vec<PathBuf>,
}

pub(crate) fn run(ws: &Workspace, options: &Options) -> Result<()> {
    let root = ws.root();
    let fuzz_dir = root.join("fuzz");
    let out = ws.target_dir()?.join("fuzz");
    ensure_cargo_fuzz(&fuzz_dir)?;
    cmd::run(
        nightly(&fuzz_dir)
            .args(["fuzz", "build", "--target-dir"])
            .arg(&out),
    )?;
    let mut reports = Vec::new();
    for target in &options.targets {
        eprintln!("\n==> fuzz {target} for {} s", options.seconds);
        reports.push(run_target(ws, &out, target, options.seconds)?);
    }
    print_table(&reports, options.seconds);
    let found: usize = reports.iter().map(|r| r.findings.len()).sum();
    if found > 0 {
        bail!(
            "{found} input(s) crashed, stalled or ran out of memory; kept under tests/fixtures/fuzz/ (cargo test replays them)"
        );
    }
    Ok(())
}

/// `cargo +nightly` in `dir`: libFuzzer's instrumentation needs nightly
/// flags. The rustup proxy picks the toolchain, so the `cargo` that started
/// xtask (stable, named in $CARGO) is not the one to call.
fn nightly(dir: &Path) -> Command {
    let mut command = Command::new("cargo");
    command
        .arg("+nightly")
        .current_dir(dir)
        .env_remove("RUSTUP_TOOLCHAIN");
    command
}

fn ensure_cargo_fuzz(fuzz_dir: &Path) -> Result<()> {
    let installed = nightly(fuzz_dir)
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if installed {
        return Ok(());
    }
    eprintln!("cargo-fuzz is missing: installing it");
    cmd::run(nightly(fuzz_dir).args(["install", "cargo-fuzz", "--locked"]))
}

fn run_target(ws: &Workspace, out: &Path, target: &'static str, seconds: u64) -> Result<Report> {
    let root = ws.root();
    let work = out.join("corpus").join(target);
    fs::create_dir_all(&work).with_context(|| format!("could not create {}", work.display()))?;
    let seeds = root.join("fuzz/corpus").join(target);
    let logs = out.join("logs");
    fs::create_dir_all(&logs)?;
    let log_path = logs.join(format!("{target}.log"));
    let mut log = fs::File::create(&log_path)
        .with_context(|| format!("could not create {}", log_path.display()))?;
    let mut command = nightly(&root.join("fuzz"));
    // New inputs go to the first corpus folder (under the target dir); the
    // committed seeds are only read.
    command
        .args(["fuzz", "run", target, "--target-dir"])
        .arg(out)
        .arg(&work)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .args(["-timeout=10", "-rss_limit_mb=2048", "-print_final_stats=1"])
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    eprintln!(
        "$ cargo +nightly fuzz run {target} ... -max_total_time={seconds} (log: {})",
        log_path.display()
    );
    let mut child = command
        .spawn()
        .context("could not start `cargo +nightly fuzz run`")?;
    let mut report = Report {
        target,
        ..Report::default()
    };
    let mut artifacts = Vec::new();
    if let Some(stderr) = child.stderr.take() {
        for line in BufReader::new(stderr).lines() {
            let line = line.context("reading libFuzzer's output")?;
            writeln!(log, "{line}")?;
            // libFuzzer prints a line per new input and per new function it
            // reaches, and at the end a dictionary it recommends: of these
            // show only the start, the pulses and the last word; show
            // everything else.
            let progress = line.starts_with('#');
            let noise = line.starts_with("\tNEW_FUNC")
                || (line.starts_with('"') && line.contains("# Uses:"));
            if (!progress && !noise)
                || (progress && ["INITED", "pulse", "DONE"].iter().any(|w| line.contains(w)))
            {
                eprintln!("{line}");
            }
            read_line(&line, &mut report, &mut artifacts);
        }
    }
    let status = child.wait()?;
    for artifact in artifacts {
        // libFuzzer names it as cargo-fuzz's prefix says, from the fuzz folder.
        let artifact = root.join("fuzz").join(artifact);
        report.findings.push(keep(root, target, &artifact)?);
    }
    if !status.success() && report.findings.is_empty() {
        bail!(
            "`cargo +nightly fuzz run {target}` failed ({status}) without a crash input; see {}",
            log_path.display()
        );
    }
    Ok(report)
}

/// Takes what one line of libFuzzer's output says.
fn read_line(line: &str, report: &mut Report, artifacts: &mut Vec<PathBuf>) {
    let stat = |name: &str| {
        line.strip_prefix(name)
            .and_then(|rest| rest.trim().parse::<u64>().ok())
    };
    if let Some(n) = stat("stat::number_of_executed_units:") {
        report.executions = Some(n);
    } else if let Some(n) = stat("stat::average_exec_per_sec:") {
        report.exec_per_sec = Some(n);
    } else if let Some(n) = stat("stat::new_units_added:") {
        report.new_units = Some(n);
    } else if let Some(n) = stat("stat::peak_rss_mb:") {
        report.peak_rss_mb = Some(n);
    } else if line.starts_with('#') {
        // "#123 DONE cov: 456 ft: 789 corp: ..." (the last such line counts).
        let field = |name: &str| {
            line.split_whitespace()
                .skip_while(|w| *w != name)
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let Some(cov) = field("cov:") {
            report.coverage = Some(cov);
        }
        if let Some(ft) = field("ft:") {
            report.features = Some(ft);
        }
    } else if let Some((_, path)) = line.split_once("Test unit written to ") {
        artifacts.push(PathBuf::from(path.trim()));
    }
}

/// Copies a crash, timeout or out-of-memory input to
/// `tests/fixtures/fuzz/<target>/<kind>-<first 12 of its hash>`.
fn keep(root: &Path, target: &str, artifact: &Path) -> Result<PathBuf> {
    let name = artifact
        .file_name()
        .and_then(|n| n.to_str())
        .context("an artifact without a name")?;
    // libFuzzer names an input `<kind>-<sha1>`; the kind may hold a dash.
    let short = match name.rsplit_once('-') {
        Some((kind, hash)) => format!("{kind}-{}", hash.chars().take(12).collect::<String>()),
        None => name.to_owned(),
    };
    let dir = root.join("tests/fixtures/fuzz").join(target);
    fs::create_dir_all(&dir)?;
    let kept = dir.join(short);
    fs::copy(artifact, &kept).with_context(|| {
        format!(
            "could not copy {} to {}",
            artifact.display(),
            kept.display()
        )
    })?;
    eprintln!("kept {} as {}", artifact.display(), kept.display());
    Ok(kept)
}

fn print_table(reports: &[Report], seconds: u64) {
    let show = |v: Option<u64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    eprintln!("\n==> fuzzing, {seconds} s per target");
    eprintln!(
        "    {:<13} {:>12} {:>8} {:>6} {:>7} {:>6} {:>7}  findings",
        "target", "executions", "exec/s", "cov", "ft", "new", "rss MB"
    );
    for r in reports {
        let findings = if r.findings.is_empty() {
            "none".to_owned()
        } else {
            r.findings
                .iter()
                .filter_map(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        eprintln!(
            "    {:<13} {:>12} {:>8} {:>6} {:>7} {:>6} {:>7}  {findings}",
            r.target,
            show(r.executions),
            show(r.exec_per_sec),
            show(r.coverage),
            show(r.features),
            show(r.new_units),
            show(r.peak_rss_mb),
        );
    }
}
