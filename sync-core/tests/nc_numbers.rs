//! An NC's numbers: the provisional one its tablet gives it at creation (at
//! most 32 characters, never changed) and the server's, which no device may
//! write; the server's change numbering an NC is the same whenever it is
//! made from the same first store, so a commit tried again stores it once.

use automerge::transaction::Transactable;
use automerge::{Automerge, ReadDoc};
use sync_core::edit::{Edit, apply_edit};
use sync_core::nc::{MAX_PROVISIONAL, Nc, number_change};
use sync_core::testing::fixtures::{Demo, forged};
use sync_core::validate::validate_batch;

fn created(demo: &Demo, provisional: &str) -> Result<Automerge, sync_core::permissions::Refusal> {
    let mut doc = Automerge::new();
    let edit = Edit::CreateNc {
        link: demo.nc_link(),
        description: "Amendment approved in 19 days against 15".into(),
        provisional: provisional.into(),
    };
    demo.edit(demo.nc_id, &mut doc, &demo.member, edit)?;
    Ok(doc)
}

#[test]
fn a_provisional_number_is_given_at_creation_within_its_limit_and_never_changed() {
    let demo = Demo::new();
    let longest = "D-".to_owned() + &"K".repeat(MAX_PROVISIONAL - 2);
    let doc = created(&demo, &longest).expect("at the limit");
    assert_eq!(Nc::read(&doc).expect("reads").provisional, longest);
    let err = created(&demo, &(longest.clone() + "1")).expect_err("one over");
    assert_eq!(err.rule, "schema", "{err}");
    assert!(err.message.contains("provisional"), "{err}");
    let none = created(&demo, "").expect("none given");
    assert_eq!(Nc::read(&none).expect("reads").provisional, "");
    // Changed afterwards, even by the team that raised it: refused.
    let change = forged(&doc, 2, |tx| {
        tx.put(automerge::ROOT, "provisional", "D-KHAN-02")
            .expect("put");
    });
    let err = validate_batch(demo.nc_id, &doc, vec![change], &demo.member, demo.today)
        .expect_err("changed");
    assert_eq!(err.rule, "doc.write_once", "{err}");
}

#[test]
fn no_device_writes_the_servers_number_not_even_in_the_change_that_creates_the_nc() {
    let demo = Demo::new();
    let doc = created(&demo, "D-KHAN-01").expect("created");
    let later = forged(&doc, 2, |tx| {
        tx.put(automerge::ROOT, "number", "NC-99").expect("put");
    });
    let err = validate_batch(demo.nc_id, &doc, vec![later], &demo.member, demo.today)
        .expect_err("a device wrote the number");
    assert_eq!(err.rule, "doc.write_once", "{err}");
    assert!(err.message.contains("server"), "{err}");
    let at_creation = forged(&Automerge::new(), 2, |tx| {
        let fresh = created(&demo, "").expect("created");
        // Everything a tablet writes to create an NC, and the number.
        for key in fresh.keys(automerge::ROOT) {
            match fresh
                .get(automerge::ROOT, &key)
                .expect("get")
                .expect("held")
                .0
            {
                automerge::Value::Scalar(v) => {
                    tx.put(automerge::ROOT, &key, v.into_owned()).expect("put")
                }
                automerge::Value::Object(kind) => {
                    tx.put_object(automerge::ROOT, &key, kind).expect("put");
                }
            }
        }
        tx.put(automerge::ROOT, "number", "NC-99").expect("put");
    });
    let err = validate_batch(
        demo.nc_id,
        &Automerge::new(),
        vec![at_creation],
        &demo.member,
        demo.today,
    )
    .expect_err("numbered at creation");
    assert_eq!(err.rule, "doc.write_once", "{err}");
}

#[test]
fn the_servers_number_is_one_change_the_same_each_time_it_is_made() {
    let demo = Demo::new();
    let mut doc = created(&demo, "D-KHAN-01").expect("created");
    let raise = Edit::Move {
        mv: "raise".into(),
        note: String::new(),
    };
    apply_edit(demo.nc_id, &mut doc, &raise, &demo.member, demo.now()).expect("raised");
    let first_store = doc.get_changes(&[]);
    let mut one = number_change(&first_store, "NC-09").expect("made");
    let mut two = number_change(&first_store, "NC-09").expect("made");
    assert_eq!(one.hash(), two.hash(), "made twice, the same change");
    assert_eq!(one.bytes(), two.bytes());
    doc.apply_changes([one]).expect("applies");
    let nc = Nc::read(&doc).expect("reads");
    assert_eq!(
        (nc.number.as_deref(), nc.provisional.as_str()),
        (Some("NC-09"), "D-KHAN-01")
    );
}
