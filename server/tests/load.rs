//! `sqm load` end to end: the built binary starts its own server on a fresh
//! SQLite database, runs every phase with three small tablets, and ends with
//! one `key=value` record that scripts read.

use std::collections::BTreeMap;
use std::process::Command;

/// The keys of the record, in order.
const KEYS: &[&str] = &[
    "converged",
    "tablets",
    "changes",
    "seconds",
    "changes_per_s",
    "bytes_per_change",
    "server_cpu_us_per_change",
    "raw_apply_us_per_change",
    "cpu_ratio",
    "live_p99_ms",
    "peak_rss_mib",
];

/// Runs `sqm load` with these arguments on its own SQLite server; its
/// standard output, once it exited successfully.
fn load(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sqm"))
        .arg("load")
        .args(args)
        .env_remove("DATABASE_URL")
        .env("SQM_LOG", "warn")
        .output()
        .expect("the sqm binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "sqm load failed ({:?}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
}

#[test]
fn a_small_load_run_converges_and_reports_every_figure() {
    let stdout = load(&[
        "--tablets",
        "3",
        "--docs-per-tablet",
        "2",
        "--changes-per-doc",
        "12",
        "--live-samples",
        "20",
        "--idle-devices",
        "2",
        "--timeout",
        "60",
        "--cool-after",
        "1",
    ]);
    let last = stdout.lines().last().unwrap_or_default();
    let record: BTreeMap<&str, &str> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .collect();
    let keys: Vec<&str> = last
        .split_whitespace()
        .filter_map(|kv| kv.split_once('=').map(|(k, _)| k))
        .collect();
    assert_eq!(keys, KEYS, "the record's keys: {last}");
    assert_eq!(record["converged"], "true", "{stdout}");
    for key in &KEYS[1..] {
        let value: f64 = record[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} is not a number in: {last}"));
        assert!(value.is_finite() && value >= 0.0, "{key}={value}");
    }
    assert_eq!(record["tablets"], "3");
    // 3 tablets x 2 audits x 12 changes, made offline and all stored.
    assert_eq!(record["changes"], "72", "{stdout}");
    assert!(
        stdout.contains("server database: 72 changes stored in the phase, 0 quarantined"),
        "{stdout}"
    );
    assert!(stdout.contains("20 samples over 5 connections"), "{stdout}");
    // Quiet after the live phase: every open document went cold on the server.
    assert!(
        stdout.contains("with 6 of the 6 documents cold"),
        "{stdout}"
    );
    for positive in [
        "seconds",
        "bytes_per_change",
        "raw_apply_us_per_change",
        "peak_rss_mib",
    ] {
        let v: f64 = record[positive].parse().unwrap_or_default();
        assert!(v > 0.0, "{positive} should be above zero: {last}");
    }
}

#[test]
fn a_load_run_whose_server_may_load_fewer_documents_than_are_open_converges() {
    // 12 audits open at once on a server that may load 3 of them: frames
    // about the others wait for a place, and every tablet still converges
    // with nothing lost (the tool checks every document against the database).
    let stdout = load(&[
        "--tablets",
        "4",
        "--docs-per-tablet",
        "3",
        "--changes-per-doc",
        "10",
        "--live-samples",
        "20",
        "--idle-devices",
        "0",
        "--timeout",
        "60",
        "--cool-after",
        "1",
        "--hot-documents",
        "3",
    ]);
    let last = stdout.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("converged=true tablets=4 changes=120 "),
        "{stdout}"
    );
    assert!(
        stdout.contains("server database: 120 changes stored in the phase, 0 quarantined"),
        "{stdout}"
    );
    assert!(
        stdout.contains("with 12 of the 12 documents cold"),
        "{stdout}"
    );
}
