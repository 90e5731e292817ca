//! Every refusal rule is asserted by some test: a rule whose code appears in
//! no test's source is one nobody would notice breaking. The tests of
//! sync-core, the server and the wasm build are read as text; a rule counts
//! as asserted where its code appears as a quoted string.

use std::path::{Path, PathBuf};

use sync_core::rules::Rule;

/// Test sources, relative to the workspace: every file in these folders.
const TEST_FOLDERS: &[&str] = &[
    "sync-core/tests",
    "server/tests",
    "server/tests/common",
    "pwa/sync-wasm/tests",
    "tests/wasm",
];

/// Rules only a tablet's own engine gives (never a server's refusal), each
/// with the unit test in `src/` that asserts it.
const ASSERTED_IN_UNIT_TESTS: &[(&str, &str)] = &[];

fn sources() -> Vec<(PathBuf, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for folder in TEST_FOLDERS {
        let Ok(entries) = std::fs::read_dir(root.join(folder)) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.file_name().is_some_and(|n| n == "rules.rs") {
                continue;
            }
            if let Ok(text) = std::fs::read_to_string(&path) {
                out.push((path, text));
            }
        }
    }
    out
}

#[test]
fn every_refusal_rule_is_asserted_by_some_test() {
    let sources = sources();
    assert!(sources.len() > 20, "the test sources were not found");
    let unasserted: Vec<&str> = Rule::ALL
        .iter()
        .map(|r| r.code())
        .filter(|code| !ASSERTED_IN_UNIT_TESTS.iter().any(|(c, _)| c == code))
        .filter(|code| {
            let quoted = format!("\"{code}\"");
            !sources.iter().any(|(_, text)| text.contains(&quoted))
        })
        .collect();
    assert!(
        unasserted.is_empty(),
        "no test asserts these rules: {unasserted:?}"
    );
}
