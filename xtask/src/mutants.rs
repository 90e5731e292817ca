//! `cargo xtask mutants [--iterate] [GROUP...]`: mutation testing with cargo-mutants
//! (installed if missing) on the code whose rules the tests must defend:
//! sync-core's validator (with the checklist's rules), permissions, workflow and envelope, and the
//! server's writer and the hub's acknowledgement path. Each group runs the
//! tests that judge its code, not the whole suite: on two cores a mutant of
//! sync-core costs 5 to 15 s, one of the server more (the durability test,
//! which kills the server twenty times, is left to `cargo xtask test`: the
//! writer's acknowledgement order is judged by writer_faults).
//!
//! Every mutant that survives is either killed by a new test or listed in
//! docs/testing.md with why it is equivalent. Not part of `cargo xtask test`.

use anyhow::{Result, bail};

use crate::cmd;
use crate::workspace::Workspace;

/// A set of files, the package they belong to, and the tests that judge them.
struct Group {
    name: &'static str,
    package: &'static str,
    files: &'static [&'static str],
    /// Only mutants whose name matches (cargo-mutants `--re`), if any.
    only: Option<&'static str>,
    features: Option<&'static str>,
    /// Arguments for `cargo test` after `--`, separated by spaces.
    tests: &'static str,
}

const GROUPS: &[Group] = &[
    Group {
        name: "validate",
        package: "sync-core",
        files: &[
            "sync-core/src/validate.rs",
            "sync-core/src/validate/*.rs",
            "sync-core/src/checklist.rs",
            "sync-core/src/fields.rs",
        ],
        only: None,
        features: Some("testing"),
        tests: "--lib --test validation --test integrity --test text_control --test refusal \
                --test robustness --test nc_moves --test audit_moves --test declared_ops \
                --test store_outcomes --test rights --test merged --test raw_writes \
                --test contested --test extensions --test nc_evidence --test nc_numbers \
                --test checklist_rules --test field_tables --test nc_contested",
    },
    Group {
        name: "permissions",
        package: "sync-core",
        files: &["sync-core/src/permissions.rs"],
        only: None,
        features: Some("testing"),
        tests: "--lib --test validation --test integrity --test refusal --test nc_moves \
                --test audit_moves --test rights --test device_rules --test extensions --test nc_evidence",
    },
    Group {
        name: "workflow",
        package: "sync-core",
        files: &["sync-core/src/workflow.rs"],
        only: None,
        features: Some("testing"),
        tests: "--lib --test nc_moves --test audit_moves --test validation --test integrity \
                --test merged --test nc_evidence --test checklist_rules",
    },
    Group {
        name: "envelope",
        package: "sync-core",
        files: &["sync-core/src/envelope.rs"],
        only: None,
        features: Some("testing"),
        tests: "--lib --test envelope_props --test refusal",
    },
    Group {
        name: "writer",
        package: "server",
        files: &["server/src/sync/writer.rs"],
        only: None,
        features: None,
        tests: "--test writer_faults --test sync_hardening --test receipt_chain --test compact",
    },
    Group {
        name: "hub-acknowledgement",
        package: "server",
        files: &["server/src/sync/hub.rs"],
        only: Some("Hub::(store|set_aside|carry_out|handle)"),
        features: None,
        tests: "--test writer_faults --test sync_hardening --test sync --test sync_limits --test revocation",
    },
];

pub(crate) fn run(ws: &Workspace, args: &[String]) -> Result<()> {
    // `--iterate`: test again only what earlier runs of the group did not
    // catch (cargo-mutants keeps their lists in the group's output folder).
    let iterate = args.iter().any(|a| a == "--iterate");
    let args: Vec<&String> = args.iter().filter(|a| *a != "--iterate").collect();
    let chosen: Vec<&Group> = if args.is_empty() {
        GROUPS.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for a in args {
            match GROUPS.iter().find(|g| g.name == a.as_str()) {
                Some(g) => chosen.push(g),
                None => bail!(
                    "no mutation group `{a}`: use {}",
                    GROUPS.iter().map(|g| g.name).collect::<Vec<_>>().join(", ")
                ),
            }
        }
        chosen
    };
    ensure_installed(ws)?;
    let out = ws.target_dir()?.join("mutants");
    for g in chosen {
        let dir = out.join(g.name);
        std::fs::create_dir_all(&dir)?;
        let mut command = ws.cargo(&["mutants", "--package", g.package, "--no-shuffle"]);
        command.arg("--output").arg(&dir);
        // Without debug info each mutant links in a fraction of the time;
        // what is judged is the same.
        command.env("CARGO_PROFILE_DEV_DEBUG", "0");
        if iterate {
            command.arg("--iterate");
        }
        for f in g.files {
            command.args(["--file", f]);
        }
        if let Some(re) = g.only {
            command.args(["--re", re]);
        }
        if let Some(features) = g.features {
            command.args(["--features", features]);
        }
        command.arg("--").args(g.tests.split_whitespace());
        // A group's survivors are the result, not a failure of this command.
        if let Err(e) = cmd::run(&mut command) {
            eprintln!("{}: {e:#}", g.name);
        }
        summarise(g.name, &dir.join("mutants.out"));
    }
    Ok(())
}

/// Installs cargo-mutants unless it answers.
fn ensure_installed(ws: &Workspace) -> Result<()> {
    if cmd::output(&mut ws.cargo(&["mutants", "--version"])).is_ok() {
        return Ok(());
    }
    cmd::run(&mut ws.cargo(&["install", "cargo-mutants", "--locked"]))
}

/// Prints a group's caught, missed, timed-out and unviable counts.
fn summarise(name: &str, out: &std::path::Path) {
    let count = |file: &str| {
        std::fs::read_to_string(out.join(file))
            .map(|t| t.lines().filter(|l| !l.trim().is_empty()).count())
            .unwrap_or(0)
    };
    let (caught, missed, timeout, unviable) = (
        count("caught.txt"),
        count("missed.txt"),
        count("timeout.txt"),
        count("unviable.txt"),
    );
    let earlier = count("previously_caught.txt");
    let viable = caught + missed + timeout;
    let score = if viable == 0 {
        0.0
    } else {
        100.0 * (caught + timeout) as f64 / viable as f64
    };
    eprintln!(
        "mutants {name}: caught {caught}, missed {missed}, timeout {timeout}, unviable {unviable}: {score:.1} % of viable mutants caught (missed: {})",
        out.join("missed.txt").display()
    );
    if earlier > 0 {
        eprintln!(
            "mutants {name}: {earlier} more were caught or unviable in earlier runs and not tried again (--iterate)"
        );
    }
}
