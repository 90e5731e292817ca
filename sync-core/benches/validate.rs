//! Validate-and-apply versus plain Automerge apply, on a realistic audit
//! (60 checklist answers, 20 findings) and on an NC (one of the audit's five).
//!
//! Run: `cargo bench -p sync-core --bench validate` (or `cargo xtask bench`).
//! Prints criterion's figures, then a summary with the ratio of the two.

use std::hint::black_box;
use std::time::{Duration, Instant};

use automerge::{Automerge, Change};
use criterion::{BatchSize, Criterion};
use sync_core::edit::{Edit, apply_edit};
use sync_core::ids::DocumentId;
use sync_core::permissions::Author;
use sync_core::testing::fixtures::Demo;
use sync_core::validate::validate_batch;
use sync_core::workflow::NcState;

/// A document, a batch of changes made on a device copy of it, and the batch's author.
struct Case {
    name: &'static str,
    id: DocumentId,
    doc: Automerge,
    batch: Vec<Change>,
    author: Author,
}

fn batch(
    demo: &Demo,
    id: DocumentId,
    doc: &Automerge,
    author: &Author,
    edits: &[Edit],
) -> Vec<Change> {
    let mut device = doc.clone();
    device.set_actor(author.actors.iter().next().expect("a device").clone());
    edits
        .iter()
        .map(|e| apply_edit(id, &mut device, e, author, demo.now()).expect("permitted"))
        .collect()
}

fn cases(demo: &Demo) -> Vec<Case> {
    let audit = demo.realistic_audit(60, 20);
    // A team member's afternoon: 25 answers revised, 5 findings added.
    let mut edits: Vec<Edit> = (0..25).map(|i| demo.answer(i * 2 + 1, i + 1)).collect();
    edits.extend((20..25).map(|i| demo.finding(i)));
    let audit_batch = batch(demo, demo.audit_id, &audit, &demo.member, &edits);

    let nc = demo.nc_in(NcState::Open);
    let nc_edits = [
        Edit::SetCorrection("Pending amendments cleared the same week".into()),
        Edit::SetRootCause("Ageing of applications not monitored at the desk".into()),
        Edit::Move {
            mv: "submit_response".into(),
            note: "Plan attached".into(),
        },
    ];
    let nc_batch = batch(demo, demo.nc_id, &nc, &demo.owner, &nc_edits);
    vec![
        Case {
            name: "audit_60_answers_20_findings_30_changes",
            id: demo.audit_id,
            doc: audit,
            batch: audit_batch,
            author: demo.member.clone(),
        },
        Case {
            name: "nc_owner_response_3_changes",
            id: demo.nc_id,
            doc: nc,
            batch: nc_batch,
            author: demo.owner.clone(),
        },
    ]
}

fn plain(case: &Case) {
    let mut doc = case.doc.clone();
    doc.apply_changes(case.batch.clone()).expect("applies");
    black_box(doc);
}

fn validated(case: &Case, demo: &Demo) {
    let accepted = validate_batch(
        case.id,
        &case.doc,
        case.batch.clone(),
        &case.author,
        demo.today,
    )
    .expect("accepted");
    black_box(accepted);
}

/// Median time per call over `rounds` rounds of `n` calls.
fn median(rounds: usize, n: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..n {
                f();
            }
            start.elapsed() / n as u32
        })
        .collect();
    times.sort();
    times[rounds / 2]
}

fn main() {
    let demo = Demo::new();
    let cases = cases(&demo);
    let mut c = Criterion::default().configure_from_args();
    for case in &cases {
        let mut group = c.benchmark_group(case.name);
        // Both sides clone the stored document: plain apply mutates its copy, the
        // validator applies to its own copy so a refused batch leaves the original intact.
        group.bench_function("plain_automerge_apply", |b| {
            b.iter_batched(
                || (case.doc.clone(), case.batch.clone()),
                |(mut d, batch)| d.apply_changes(batch),
                BatchSize::SmallInput,
            )
        });
        group.bench_function("validate_and_apply", |b| {
            b.iter_batched(
                || case.batch.clone(),
                |batch| validate_batch(case.id, &case.doc, batch, &case.author, demo.today),
                BatchSize::SmallInput,
            )
        });
        // What the engine's pre-scan of the batch's operations costs
        // (sync_core::inflate), next to Automerge reading the same bytes.
        let raw: Vec<Vec<u8>> = case.batch.iter().map(|c| c.raw_bytes().to_vec()).collect();
        let bounds = sync_core::inflate::Bounds {
            budget: 64 << 20,
            ops: 100_000,
            ops_per_change: 10_000,
        };
        group.bench_function("pre_scan_of_the_batch", |b| {
            b.iter(|| {
                raw.iter()
                    .map(|c| sync_core::inflate::measure(c, bounds).map(|m| m.ops))
                    .collect::<Vec<_>>()
            })
        });
        group.bench_function("automerge_parse_of_the_batch", |b| {
            b.iter(|| {
                raw.iter()
                    .map(|c| Change::try_from(c.as_slice()).map(|c| c.len()))
                    .collect::<Vec<_>>()
            })
        });
        group.finish();
    }
    c.final_summary();

    println!("\nsummary (median of 15 rounds; each side includes cloning the stored document)");
    for case in &cases {
        let p = median(15, 200, || plain(case));
        let v = median(15, 200, || validated(case, &demo));
        println!(
            "{:<45} plain {:>8.1} us  validate+apply {:>8.1} us  ratio {:.2}",
            case.name,
            p.as_secs_f64() * 1e6,
            v.as_secs_f64() * 1e6,
            v.as_secs_f64() / p.as_secs_f64()
        );
    }
    println!("reproduce: cargo bench -p sync-core --bench validate");
}
