//! Where the workspace is and where cargo puts its build output.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::cmd;

/// The workspace root and the cargo that started this xtask.
#[derive(Debug)]
pub(crate) struct Workspace {
    root: PathBuf,
    cargo: OsString,
}

impl Workspace {
    pub(crate) fn new() -> Result<Self> {
        // `cargo run` names the package's folder in this checkout at run time.
        // The path compiled in is only the fallback: a build cache shared
        // between checkouts (CARGO_TARGET_DIR) can hand one checkout the
        // xtask built in another, whose path may no longer exist.
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest_dir
            .parent()
            .context("xtask/ has no parent directory")?
            .to_path_buf();
        // `cargo xtask` runs us through `cargo run`, which names itself in $CARGO.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Ok(Self { root, cargo })
    }

    /// The workspace root.
    pub(crate) fn root(&self) -> &std::path::Path {
        &self.root
    }

    /// A command run in the workspace root.
    pub(crate) fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(&self.root);
        command
    }

    /// `cargo <args>` in the workspace root.
    pub(crate) fn cargo(&self, args: &[&str]) -> Command {
        let mut command = self.command(&self.cargo);
        command.args(args);
        command
    }

    /// Cargo's target directory as cargo itself resolves it (CARGO_TARGET_DIR,
    /// `build.target-dir`, or `<root>/target`).
    pub(crate) fn target_dir(&self) -> Result<PathBuf> {
        let json =
            cmd::output(&mut self.cargo(&["metadata", "--format-version", "1", "--no-deps"]))?;
        let metadata: serde_json::Value =
            serde_json::from_str(&json).context("`cargo metadata` printed invalid JSON")?;
        let dir = metadata["target_directory"]
            .as_str()
            .context("`cargo metadata` printed no target_directory")?;
        Ok(PathBuf::from(dir))
    }
}
