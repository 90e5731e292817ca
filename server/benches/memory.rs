//! What one open document costs the sync server in memory, part by part:
//! its Automerge copy as loaded from the database, the same after a day's
//! changes arrived by sync (with the server's sync state), saved and loaded
//! again, loaded whole after the day, and the audit's live view and report
//! rows the projector keeps. Each part is measured in a process of its own
//! as the resident memory its copies add, on the demo's realistic audit.
//!
//! Run: `cargo bench -p server --bench memory`

use server::load::baseline::plain_sync;
use server::load::server::rss_mib;
use server::projection::Projector;
use sync_core::automerge::Automerge;
use sync_core::automerge::sync::State;
use sync_core::nc::DueRules;
use sync_core::testing::fixtures::Demo;
use sync_core::validate::Touched;

/// Copies of each part made, so that the process's resident memory moves
/// by whole pages per part.
const COPIES: usize = 500;

/// This process's resident memory, KiB (Linux).
fn rss_kib() -> f64 {
    rss_mib(std::process::id()).unwrap_or(0.0) * 1024.0
}

/// Makes `COPIES` values with `f`, keeps them, and returns them with the
/// resident memory they added per copy (KiB).
fn held<T>(mut f: impl FnMut(usize) -> T) -> (Vec<T>, f64) {
    let before = rss_kib();
    let values: Vec<T> = (0..COPIES).map(&mut f).collect();
    let per = (rss_kib() - before) / COPIES as f64;
    (values, per)
}

/// Syncs a device copy into the server copy; returns the server's sync state.
fn sync_into(server: &mut Automerge, device: &Automerge) -> State {
    let (mut ss, mut ds) = (State::new(), State::new());
    plain_sync(&mut device.clone(), &mut ds, server, &mut ss).expect("syncs");
    ss
}

/// The parts measured, each in a process of its own (so that memory one
/// part freed is not reused by the next and hidden).
const PARTS: [(&str, &str); 5] = [
    ("before", "Automerge copy as loaded before the day"),
    (
        "synced",
        "the same after the day's changes arrived by sync (sync state included)",
    ),
    ("reloaded", "that copy saved and loaded again"),
    ("whole", "Automerge copy loaded whole after the day"),
    ("projector", "the projector's live view and report rows"),
];

fn main() {
    let part = std::env::args()
        .nth(1)
        .filter(|a| PARTS.iter().any(|(p, _)| p == a));
    let Some(part) = part else {
        let exe = std::env::current_exe().expect("this program");
        println!(
            "memory per open document (the demo's audit, a day's work; {COPIES} copies each; KiB of resident memory per copy):"
        );
        for (part, what) in PARTS {
            let out = std::process::Command::new(&exe)
                .arg(part)
                .output()
                .expect("runs");
            let figure = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            println!("  {what}: {figure}");
        }
        println!("reproduce: cargo bench -p server --bench memory");
        return;
    };
    let demo = Demo::new();
    // The audit as the server stored it, and a day's work on a tablet:
    // about the load tool's 67 changes per audit.
    let stored = demo.realistic_audit(4, 0).save();
    let mut day = Automerge::load(&stored).expect("loads");
    let before = day.get_heads();
    for i in 0..62 {
        demo.must(
            demo.audit_id,
            &mut day,
            &demo.lead,
            demo.answer(i + 4, i % 3),
        );
    }
    for i in 0..5 {
        demo.must(demo.audit_id, &mut day, &demo.lead, demo.finding(i));
    }
    let after_day = day.save();
    let synced = |_| {
        let mut d = Automerge::load(&stored).expect("loads");
        let state = sync_into(&mut d, &day);
        (d, state)
    };
    let kib = match part.as_str() {
        "before" => held(|_| Automerge::load(&stored).expect("loads")).1,
        "synced" => held(synced).1,
        "reloaded" => {
            held(|k| {
                let (d, _) = synced(k);
                Automerge::load(&d.save()).expect("loads")
            })
            .1
        }
        "whole" => held(|_| Automerge::load(&after_day).expect("loads")).1,
        _ => {
            let (docs, _) = held(synced);
            held(|k| {
                let mut p = Projector::default();
                p.project(
                    demo.audit_id,
                    &docs[k].0,
                    &before,
                    &Touched::unknown(),
                    &DueRules::default(),
                )
                .expect("projects");
                p
            })
            .1
        }
    };
    println!("{kib:.1}");
}
