//! Validation given the sender's whole document (a device that sends a day
//! of work sends its document, not its changes): the document is used as the
//! merged copy only when it is exactly the stored one with the batch applied,
//! the verdict is the one the changes alone would get, and what the batch
//! wrote is reported part by part.

use automerge::{Automerge, Change};
use sync_core::edit::Edit;
use sync_core::testing::fixtures::Demo;
use sync_core::validate::{is_merge_of, validate_batch, validate_merged};

/// The lead's tablet copy of `stored` after `edits`, and the batch they made.
fn lead_works(demo: &Demo, stored: &Automerge, edits: Vec<Edit>) -> (Automerge, Vec<Change>) {
    let mut device = stored.clone();
    for edit in edits {
        demo.must(demo.audit_id, &mut device, &demo.lead, edit);
    }
    let batch = device.get_changes(&stored.get_heads());
    (device, batch)
}

#[test]
fn the_senders_document_stands_for_the_batch_only_when_it_is_exactly_its_merge() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(10, 2);
    let (device, batch) = lead_works(&demo, &stored, vec![demo.answer(20, 1), demo.finding(7)]);
    assert_eq!(batch.len(), 2);
    assert!(is_merge_of(&device, &stored, &batch));
    // One change short, or the stored copy in place of the merge: not a merge.
    assert!(!is_merge_of(&device, &stored, &batch[..1]));
    assert!(!is_merge_of(&stored, &stored, &batch));
    let mut beyond = device.clone();
    demo.must(demo.audit_id, &mut beyond, &demo.lead, demo.answer(21, 2));
    assert!(
        !is_merge_of(&beyond, &stored, &batch),
        "a change beyond the batch"
    );

    let plain = validate_batch(
        demo.audit_id,
        &stored,
        batch.clone(),
        &demo.lead,
        demo.today,
    )
    .expect("permitted");
    let merged = validate_merged(
        demo.audit_id,
        &stored,
        batch.clone(),
        Some(device.clone()),
        &demo.lead,
        demo.today,
    )
    .expect("permitted");
    let heads = |a: &sync_core::validate::Accepted| {
        let mut h = a.doc.as_ref().expect("applied").get_heads();
        h.sort();
        h
    };
    assert_eq!(heads(&plain), heads(&merged));
    assert_eq!(plain.touched, merged.touched);
    // A document holding more than the batch is not taken for its merge: the
    // result is the stored copy with the batch, nothing more.
    let guarded = validate_merged(
        demo.audit_id,
        &stored,
        batch,
        Some(beyond),
        &demo.lead,
        demo.today,
    )
    .expect("permitted");
    assert_eq!(heads(&guarded), heads(&plain));
}

#[test]
fn a_refused_batch_is_refused_whatever_document_comes_with_it() {
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let stored = demo.realistic_audit(4, 0);
    // Someone not on the audit team writes its notes, bypassing the tablet's checks.
    let mut forged = stored.clone();
    forged.set_actor(
        demo.outsider
            .actors
            .iter()
            .next()
            .expect("a device")
            .clone(),
    );
    let mut tx = forged.transaction();
    tx.put(automerge::ROOT, "notes", "not mine to write")
        .expect("put");
    tx.commit();
    let batch = forged.get_changes(&stored.get_heads());
    assert!(is_merge_of(&forged, &stored, &batch));
    let refused = validate_merged(
        demo.audit_id,
        &stored,
        batch,
        Some(forged),
        &demo.outsider,
        demo.today,
    );
    assert!(refused.is_err(), "{refused:?}");
}

#[test]
fn what_a_batch_wrote_is_reported_by_part() {
    let demo = Demo::new();
    let stored = demo.realistic_audit(4, 1);
    let start = Edit::Move {
        mv: "start".into(),
        note: String::new(),
    };
    let (_, batch) = lead_works(
        &demo,
        &stored,
        vec![demo.answer(1, 2), demo.finding(3), start],
    );
    let accepted =
        validate_batch(demo.audit_id, &stored, batch, &demo.lead, demo.today).expect("permitted");
    let t = &accepted.touched;
    assert!(!t.everything);
    let responses: Vec<&str> = t.entries_of("responses").collect();
    assert_eq!(responses, ["sd.item_0@P03"]);
    let findings: Vec<&str> = t.entries_of("findings").collect();
    assert_eq!(findings, ["f-03"]);
    assert!(t.any("events") && !t.whole("events"));
    assert!(!t.any("header") && !t.any("notes"));
}

#[test]
fn unknown_writes_mean_every_part_is_read_again_and_batches_add_up() {
    use sync_core::validate::Touched;
    let unknown = Touched::unknown();
    assert!(unknown.everything);
    for top in ["header", "responses", "events", "notes"] {
        assert!(unknown.any(top) && unknown.whole(top), "{top}");
    }

    let part = |roots: &[&str], below: &[&str], entries: &[(&str, &str)]| Touched {
        everything: false,
        roots: roots.iter().map(|s| s.to_string()).collect(),
        below: below.iter().map(|s| s.to_string()).collect(),
        entries: entries
            .iter()
            .map(|(t, e)| (t.to_string(), e.to_string()))
            .collect(),
    };
    let mut sum = part(&["notes"], &["responses"], &[("responses", "r-1")]);
    sum.merge(part(
        &[],
        &["findings"],
        &[("findings", "f-01"), ("responses", "r-2")],
    ));
    assert!(!sum.everything);
    assert!(sum.whole("notes") && !sum.whole("findings") && sum.any("findings"));
    assert_eq!(
        sum.entries_of("responses").collect::<Vec<_>>(),
        ["r-1", "r-2"]
    );
    assert_eq!(sum.entries_of("findings").collect::<Vec<_>>(), ["f-01"]);
    assert!(!sum.any("header"));
    sum.merge(Touched::unknown());
    assert!(sum.everything && sum.whole("header"));
}
