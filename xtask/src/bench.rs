//! `cargo xtask bench`: the criterion benchmarks of sync-core and the
//! server's API benchmark (login throughput, reference-data latency) and
//! memory benchmark (what one open document costs the server).

use anyhow::Result;

use crate::cmd;
use crate::workspace::Workspace;

pub(crate) fn run(ws: &Workspace, extra: &[String]) -> Result<()> {
    let mut command = ws.cargo(&["bench", "-p", "sync-core", "-p", "server"]);
    command.args(extra);
    cmd::run(&mut command)?;
    let reports = ws.target_dir()?.join("criterion");
    eprintln!("\nbenchmark results (criterion): {}", reports.display());
    eprintln!(
        "  HTML report: {}",
        reports.join("report").join("index.html").display()
    );
    Ok(())
}
