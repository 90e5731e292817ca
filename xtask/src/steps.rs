//! `cargo xtask test`: every check, in order, failing fast with the step's name.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::workspace::Workspace;
use crate::{cmd, postgres, pwa, wasm};

/// The checks, in order. Adding a check is adding one line.
#[rustfmt::skip]
const STEPS: &[(&str, Action)] = &[
    ("wasm32 target", Action::Call(wasm::ensure_target)),
    ("fmt", Action::Cargo(&["fmt", "--all", "--check"])),
    ("clippy", Action::Cargo(&["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
    ("clippy wasm32", Action::Cargo(&["clippy", "-p", "sync-core", "-p", "sync-wasm", "--target", wasm::TARGET, "--", "-D", "warnings"])),
    ("postgres", Action::Call(postgres::ensure)),
    ("cargo test", Action::Cargo(&["test", "--workspace"])),
    ("wasm build (nodejs)", Action::Call(build_node_pkg)),
    ("wasm node tests", Action::Call(node_tests)),
    ("browser client and browser tests", Action::Call(pwa::browser_tests)),
];

/// What a step runs.
enum Action {
    /// `cargo <args>` in the workspace root.
    Cargo(&'static [&'static str]),
    /// Anything else.
    Call(fn(&Workspace) -> Result<()>),
}

impl Action {
    fn run(&self, ws: &Workspace) -> Result<()> {
        match self {
            Action::Cargo(args) => cmd::run(&mut ws.cargo(args)),
            Action::Call(function) => function(ws),
        }
    }
}

pub(crate) fn test(ws: &Workspace) -> Result<()> {
    let started = Instant::now();
    let mut times: Vec<(&str, Duration)> = Vec::new();
    for (index, (name, action)) in STEPS.iter().enumerate() {
        eprintln!("\n==> [{}/{}] {name}", index + 1, STEPS.len());
        let step_started = Instant::now();
        action
            .run(ws)
            .with_context(|| format!("step `{name}` failed"))?;
        times.push((name, step_started.elapsed()));
    }
    eprintln!("\n==> all {} steps passed", STEPS.len());
    for (name, time) in times {
        eprintln!("    {:>7.1} s  {name}", time.as_secs_f64());
    }
    eprintln!("    {:>7.1} s  total", started.elapsed().as_secs_f64());
    Ok(())
}

/// Where the Node.js build of sync-wasm goes for the Node tests.
fn node_pkg(ws: &Workspace) -> Result<PathBuf> {
    Ok(ws.target_dir()?.join("wasm-node"))
}

fn build_node_pkg(ws: &Workspace) -> Result<()> {
    wasm::build(ws, &wasm::Options::new(wasm::Glue::Nodejs, node_pkg(ws)?))
}

/// The Node tests run the wasm build against a native peer (sync-wasm's
/// `native_peer` example), so both builds of sync-core meet in one sync.
fn node_tests(ws: &Workspace) -> Result<()> {
    let pkg = node_pkg(ws)?;
    cmd::run(&mut ws.cargo(&["build", "-p", "sync-wasm", "--example", "native_peer"]))?;
    let peer = ws
        .target_dir()?
        .join("debug")
        .join("examples")
        .join("native_peer");
    cmd::run(
        ws.command("node")
            .env("SQM_WASM_PKG", &pkg)
            .env("SQM_NATIVE_PEER", &peer)
            .args(["--test", "tests/wasm/"]),
    )
}
