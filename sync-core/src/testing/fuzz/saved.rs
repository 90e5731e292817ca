//! The inputs kept for the fuzz targets, read and written by the replay
//! tests of sync-core and the server (`tests/fuzz_fixtures.rs` in each): the
//! seed corpus in `fuzz/corpus/<target>/` and what once crashed or stalled
//! in `tests/fixtures/fuzz/<target>/`.

use std::path::{Path, PathBuf};

/// The workspace's root folder (the parent of sync-core's).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// The files of a folder, sorted; none if it does not exist.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Runs every saved input of `target` through `body`, each to its end, and
/// fails naming every input that panicked; the seed corpus must not be empty.
pub fn replay(target: &str, body: fn(&[u8])) {
    let seeds = files(&root().join("fuzz/corpus").join(target));
    assert!(!seeds.is_empty(), "no seed corpus for {target}");
    let found = files(&root().join("tests/fixtures/fuzz").join(target));
    let mut failed = Vec::new();
    for path in seeds.iter().chain(&found) {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => panic!("{} does not read: {e}", path.display()),
        };
        eprintln!("{target}: {} ({} bytes)", path.display(), bytes.len());
        if std::panic::catch_unwind(|| body(&bytes)).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: these inputs fail: {failed:#?}"
    );
}

/// Writes one saved input (the ignored tests that make the seed corpus).
pub fn write(dir: &Path, name: &str, bytes: &[u8]) {
    let path = dir.join(name);
    if let Err(e) = std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, bytes)) {
        panic!("{} cannot be written: {e}", path.display());
    }
    eprintln!("wrote {} ({} bytes)", path.display(), bytes.len());
}
