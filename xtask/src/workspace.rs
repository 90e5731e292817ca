//! Where the workspace is and where cargo puts its build output.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
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
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("xtask/ has no parent directory")?
            .to_path_buf();
        // `cargo xtask` runs us through `cargo run`, which names itself in $CARGO.
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Ok(Self { root, cargo })
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
