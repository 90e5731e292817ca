//! The browser client: its npm packages (from the committed lock file), the
//! web build of sync-wasm it runs on, its type check and its Vite build; and
//! the browser tests, which drive Debian's Chromium through playwright-core
//! against a real `sqm serve` with the demo unit.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::workspace::Workspace;
use crate::{cmd, wasm};

/// Where the Chromium the browser tests drive lives (Debian's package).
const CHROMIUM: &str = "/usr/bin/chromium";
const SQLITE3: &str = "/usr/bin/sqlite3";

fn pwa_dir(ws: &Workspace) -> PathBuf {
    ws.root().join("pwa")
}

/// Where the build of the browser client goes (`sqm serve --web` serves it).
pub(crate) fn web_out(ws: &Workspace) -> Result<PathBuf> {
    Ok(ws.target_dir()?.join("pwa-dist"))
}

fn npx(ws: &Workspace, args: &[&str]) -> std::process::Command {
    let mut c = ws.command("npx");
    c.current_dir(pwa_dir(ws)).args(["--no-install"]).args(args);
    c
}

/// `npm ci` when the installed packages are not those of the lock file.
fn npm_ci(ws: &Workspace) -> Result<()> {
    let dir = pwa_dir(ws);
    let lock = std::fs::read(dir.join("package-lock.json")).context("pwa/package-lock.json")?;
    let installed = std::fs::read(dir.join("node_modules/.package-lock.json")).ok();
    let stamp = dir.join("node_modules/.sqm-lock");
    if installed.is_some() && std::fs::read(&stamp).ok().as_deref() == Some(lock.as_slice()) {
        return Ok(());
    }
    cmd::run(
        ws.command("npm")
            .current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund"]),
    )?;
    std::fs::write(&stamp, &lock).context("marking the installed packages")?;
    Ok(())
}

/// Builds the browser client into [`web_out`].
pub(crate) fn build(ws: &Workspace) -> Result<()> {
    npm_ci(ws)?;
    let generated = pwa_dir(ws).join("generated/sync-wasm");
    wasm::build(ws, &wasm::Options::new(wasm::Glue::Web, generated))?;
    cmd::run(&mut npx(ws, &["tsc", "--noEmit"]))?;
    let out = web_out(ws)?;
    cmd::run(npx(ws, &["vite", "build", "--logLevel", "warn"]).env("SQM_WEB_OUT", &out))?;
    Ok(())
}

/// Installs Debian's Chromium (and the Noto fonts, for Devanagari) and the
/// `sqlite3` shell (the tests read the server's database) when missing.
fn ensure_chromium(ws: &Workspace) -> Result<()> {
    if Path::new(CHROMIUM).exists() && Path::new(SQLITE3).exists() {
        return Ok(());
    }
    eprintln!("installing Debian's chromium, fonts-noto-core and sqlite3 for the browser tests");
    cmd::run(ws.command("apt-get").args(["update", "-qq"]))?;
    cmd::run(
        ws.command("apt-get")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .args([
                "install",
                "-y",
                "-qq",
                "chromium",
                "fonts-noto-core",
                "sqlite3",
            ]),
    )
}

/// The browser tests: `node --test pwa/tests/` against the build and the
/// `sqm` binary, screenshots into `<target dir>/screenshots/`.
pub(crate) fn browser_tests(ws: &Workspace) -> Result<()> {
    build(ws)?;
    ensure_chromium(ws)?;
    cmd::run(&mut ws.cargo(&["build", "-p", "server", "--bin", "sqm"]))?;
    let target = ws.target_dir()?;
    cmd::run(
        ws.command("node")
            .current_dir(pwa_dir(ws))
            .env("SQM_BIN", target.join("debug").join("sqm"))
            .env("SQM_WEB_DIR", web_out(ws)?)
            .env("SQM_CHROMIUM", CHROMIUM)
            .env("SQM_SCREENSHOTS", target.join("screenshots"))
            .args(["--test", "--test-concurrency=1", "tests/"]),
    )
}
