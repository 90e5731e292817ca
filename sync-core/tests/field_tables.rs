//! The tables of `sync_core::fields` are the one definition of each
//! document kind's fields: these tests hold them to the documents the app
//! makes (every field the editor writes is in its kind's table, every row
//! of a table is written by some edit) and to the validator (a value of the
//! wrong form in any field, and a write of any field by someone whose part
//! it is not, are refused by the rule the table names).

use std::collections::BTreeSet;

use automerge::{Automerge, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};
use sync_core::DocKind;
use sync_core::edit::Edit;
use sync_core::fields::{self, Form, Object, Shape, Writer};
use sync_core::ids::DocumentId;
use sync_core::nc::{DueKind, EvidenceOf};
use sync_core::permissions::{Author, Field};
use sync_core::testing::fixtures::{Demo, forged};
use sync_core::validate::validate_batch;
use sync_core::workflow::Who;

/// The demo's three documents with every field an edit can write filled
/// (the NC's server number apart: the server writes it; and the heads an
/// audit submitted for review keeps).
fn full_documents(demo: &Demo) -> [(DocKind, DocumentId, Automerge); 3] {
    let mut audit = demo.realistic_audit(3, 2);
    let mut answer = demo.answer(0, 1);
    if let Edit::SetResponse { evidence, .. } = &mut answer {
        let mut photo = Demo::scan("register.jpg", 0x11);
        photo.taken_at = Some(demo.now());
        evidence.push(photo);
    }
    demo.must(demo.audit_id, &mut audit, &demo.lead, answer);
    let mut finding = demo.finding(1);
    if let Edit::PutFinding { evidence, .. } = &mut finding {
        let mut photo = Demo::scan("file.jpg", 0x12);
        photo.taken_at = Some(demo.now());
        evidence.push(photo);
    }
    demo.must(demo.audit_id, &mut audit, &demo.lead, finding);
    demo.must(
        demo.audit_id,
        &mut audit,
        &demo.lead,
        Edit::SetNotes("Opening meeting 10:00".into()),
    );
    demo.must(
        demo.audit_id,
        &mut audit,
        &demo.lead,
        Edit::Move {
            mv: "start".into(),
            note: "Opening meeting held".into(),
        },
    );

    let mut nc = Automerge::new();
    demo.must(
        demo.nc_id,
        &mut nc,
        &demo.member,
        Edit::CreateNc {
            link: demo.nc_link(),
            description: "Amendment approved in 19 days against 15".into(),
            provisional: "D-2-1".into(),
        },
    );
    demo.fill_nc(&mut nc);
    demo.must(
        demo.nc_id,
        &mut nc,
        &demo.member,
        Edit::AttachNcEvidence {
            of: EvidenceOf::Verification,
            file: Demo::scan("seen.pdf", 0x13),
        },
    );
    let mut photo = Demo::scan("desk.jpg", 0x14);
    photo.taken_at = Some(demo.now());
    for (of, by) in [
        (EvidenceOf::Implementation, &demo.owner),
        (EvidenceOf::Verification, &demo.member),
    ] {
        demo.must(
            demo.nc_id,
            &mut nc,
            by,
            Edit::AttachNcEvidence {
                of,
                file: photo.clone(),
            },
        );
    }
    demo.must(
        demo.nc_id,
        &mut nc,
        &demo.nodal,
        Edit::Extend {
            of: DueKind::Response,
            due: "2026-03-01".parse().expect("date"),
            justification: "The officer is on election duty".into(),
        },
    );
    // The owner asks twice: the nodal officer grants one request and refuses the other.
    for (rid, due) in [("q-1", "2026-03-15"), ("q-2", "2026-04-15")] {
        demo.must(
            demo.nc_id,
            &mut nc,
            &demo.owner,
            Edit::RequestExtension {
                id: rid.parse().expect("id"),
                of: DueKind::Response,
                due: due.parse().expect("date"),
                justification: "The records are with the CAG audit party".into(),
            },
        );
    }
    demo.must(
        demo.nc_id,
        &mut nc,
        &demo.nodal,
        Edit::GrantExtension {
            request: "q-1".parse().expect("id"),
        },
    );
    demo.must(
        demo.nc_id,
        &mut nc,
        &demo.nodal,
        Edit::RefuseExtension {
            request: "q-2".parse().expect("id"),
            reason: "Two weeks are enough".into(),
        },
    );
    demo.must(
        demo.nc_id,
        &mut nc,
        &demo.member,
        Edit::Move {
            mv: "raise".into(),
            note: "Raised at the closing meeting".into(),
        },
    );

    let mut review = Automerge::new();
    let id = demo.review_id;
    for edit in [
        Edit::CreateReview {
            unit: demo.unit.clone(),
            title: "MR-1".into(),
        },
        Edit::SetMinutes("Chaired by the Commissioner".into()),
        Edit::HoldReview(demo.today),
        Edit::AddDecision("Ageing report every day".into()),
        Edit::PutAction {
            id: "a-1".parse().expect("id"),
            action: sync_core::nc::Action {
                text: "Circulate the ageing report".into(),
                owner: "Supdt Div-II".into(),
                target: "2026-02-15".parse().expect("date"),
                done_on: Some(demo.today),
            },
        },
    ] {
        demo.must(id, &mut review, &demo.nodal, edit);
    }
    [
        (DocKind::Audit, demo.audit_id, audit),
        (DocKind::Nc, demo.nc_id, nc),
        (DocKind::Review, demo.review_id, review),
    ]
}

/// Records every place of `doc` under `obj` as a pattern (`responses/*/evidence/#/name`),
/// failing on a key or a shape the table of `object` does not have.
fn walk(doc: &Automerge, obj: &ObjId, object: Object, path: &str, seen: &mut BTreeSet<String>) {
    let at = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}/{k}")
        }
    };
    let children: Vec<(Option<String>, Value<'_>, ObjId)> = match doc.object_type(obj) {
        Ok(ObjType::Map) => doc
            .map_range(obj, ..)
            .map(|m| {
                (
                    Some(m.key.to_string()),
                    m.value.clone().into_value(),
                    m.id(),
                )
            })
            .collect(),
        _ => doc
            .list_range(obj, ..)
            .map(|l| (None, l.value.clone().into_value(), l.id()))
            .collect(),
    };
    for (key, value, id) in children {
        let (name, child) = match (object, key.as_deref()) {
            (Object::Entries(ids, _), Some(k)) => {
                assert!(ids.fits(k), "{path}: entry key {k}");
                ("*".to_owned(), object.child(Some(k)))
            }
            (Object::Fields(_), Some(k)) => {
                assert!(object.field(k).is_some(), "{}: not in the table", at(k));
                (k.to_owned(), object.child(Some(k)))
            }
            (_, None) => ("#".to_owned(), object.child(None)),
            (_, Some(k)) => panic!("{}: a key in a list", at(k)),
        };
        let here = at(&name);
        match value {
            Value::Object(_) => {
                let child = child.unwrap_or_else(|| panic!("{here}: an object where a value goes"));
                seen.insert(here.clone());
                walk(doc, &id, child, &here, seen);
            }
            Value::Scalar(v) => {
                let form = object
                    .form(key.as_deref())
                    .unwrap_or_else(|| panic!("{here}: a value where an object goes"));
                assert!(form.fits(&v), "{here}: {v:?} is not of the form {form:?}");
                seen.insert(here);
            }
        }
    }
}

/// Every place the table of `object` describes, as patterns.
fn described(object: Object, path: &str, out: &mut BTreeSet<String>) {
    let at = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}/{k}")
        }
    };
    match object {
        Object::Fields(specs) => {
            for spec in specs.iter().filter(|s| s.writer != Writer::Server) {
                let here = at(spec.key);
                out.insert(here.clone());
                if let Shape::Object(inner) = spec.shape {
                    described(inner, &here, out);
                }
            }
        }
        Object::Entries(_, specs) => {
            let here = at("*");
            out.insert(here.clone());
            described(Object::Fields(specs), &here, out);
        }
        Object::Maps(specs) => {
            let here = at("#");
            out.insert(here.clone());
            described(Object::Fields(specs), &here, out);
        }
        Object::Values(_) => {
            out.insert(at("#"));
        }
    }
}

#[test]
fn the_documents_the_app_makes_hold_every_field_of_their_table_and_nothing_else() {
    let demo = Demo::new();
    for (kind, _, mut doc) in full_documents(&demo) {
        if kind == DocKind::Audit {
            // Submitted for review: the move keeps the heads it locked.
            demo.must(
                demo.audit_id,
                &mut doc,
                &demo.lead,
                Edit::Move {
                    mv: "submit_for_review".into(),
                    note: String::new(),
                },
            );
        }
        let mut seen = BTreeSet::new();
        walk(&doc, &ROOT, fields::root(kind), "", &mut seen);
        let mut all = BTreeSet::new();
        described(fields::root(kind), "", &mut all);
        let unwritten: Vec<_> = all.difference(&seen).collect();
        assert!(
            unwritten.is_empty(),
            "{kind}: no edit writes {unwritten:?} (a row of the table nothing uses)"
        );
    }
}

/// The demo person whose part `field` is.
fn writer_of(demo: &Demo, field: Field) -> &Author {
    match field.who() {
        Who::AuditLead => &demo.lead,
        Who::AuditTeam | Who::IndependentAuditor => &demo.member,
        Who::ProcessOwner => &demo.owner,
        Who::NodalOfficer => &demo.nodal,
    }
}

fn device_of(demo: &Demo, author: &Author) -> u8 {
    [
        &demo.lead,
        &demo.member,
        &demo.owner,
        &demo.nodal,
        &demo.outsider,
    ]
    .iter()
    .position(|a| a.user == author.user)
    .map(|i| i as u8 + 1)
    .expect("a demo person")
}

/// A value that is not of `form`.
fn misfit(form: Form) -> ScalarValue {
    match form {
        Form::Count => ScalarValue::Str("three".into()),
        Form::Line | Form::Lines => ScalarValue::Uint(3),
        Form::Provisional => {
            ScalarValue::Str("D".repeat(sync_core::nc::MAX_PROVISIONAL + 1).into())
        }
        _ => ScalarValue::Str("not of its form".into()),
    }
}

/// A value of `form` that no demo document holds where it could be written.
fn fit(form: Form, demo: &Demo) -> ScalarValue {
    let text = match form {
        Form::Count => return ScalarValue::Uint(99),
        Form::Line => "Written by someone else",
        Form::Lines => "Written by\nsomeone else",
        Form::Sender | Form::User => demo.outsider.user.as_str(),
        Form::Timestamp => "2026-01-16T09:00:00Z",
        Form::Date => "2026-02-01",
        Form::Clause => "3.4",
        Form::Process => "P08",
        Form::Sha256 => "abababababababababababababababababababababababababababababababab",
        Form::Unit => "DEMO-II",
        Form::FindingClass => "ofi",
        Form::AnswerType => "photo",
        Form::Severity => "major",
        Form::DueKind => "action",
        Form::Document | Form::Item | Form::Provisional | Form::Hash => {
            panic!("{form:?} is never written after a document is made")
        }
    };
    ScalarValue::Str(text.into())
}

/// Every value field in a map of `doc` the table says may be written
/// after the document is made, with its map, part and form.
fn writable_values(
    doc: &Automerge,
    obj: &ObjId,
    object: Object,
    part: Option<Field>,
    path: &str,
    out: &mut Vec<(String, ObjId, String, Field, Form)>,
) {
    let Object::Fields(specs) = object else {
        return;
    };
    for spec in specs {
        let part = match spec.writer {
            Writer::Part(p) => p.or(part),
            Writer::Once | Writer::Server => None,
        };
        let (Some(part), false) = (part, spec.append_only) else {
            continue;
        };
        let here = if path.is_empty() {
            spec.key.to_owned()
        } else {
            format!("{path}/{}", spec.key)
        };
        match spec.shape {
            Shape::Value(form) => out.push((here, obj.clone(), spec.key.into(), part, form)),
            Shape::Object(inner) => {
                let Ok(Some((_, child))) = doc.get(obj, spec.key) else {
                    continue;
                };
                match inner {
                    Object::Fields(_) => {
                        writable_values(doc, &child, inner, Some(part), &here, out)
                    }
                    Object::Entries(_, entry) => {
                        if let Some(first) = doc.keys(&child).next()
                            && let Ok(Some((_, e))) = doc.get(&child, first.as_str())
                        {
                            let here = format!("{here}/{first}");
                            writable_values(doc, &e, Object::Fields(entry), Some(part), &here, out);
                        }
                    }
                    Object::Maps(_) | Object::Values(_) => {}
                }
            }
        }
    }
}

#[test]
fn a_value_of_the_wrong_form_is_refused_in_every_field_the_table_lets_be_written() {
    let demo = Demo::new();
    let mut checked = 0;
    for (kind, id, doc) in full_documents(&demo) {
        let mut values = Vec::new();
        writable_values(&doc, &ROOT, fields::root(kind), None, "", &mut values);
        for (path, obj, key, part, form) in values {
            let author = writer_of(&demo, part);
            let change = forged(&doc, device_of(&demo, author), |tx| {
                use automerge::transaction::Transactable;
                tx.put(&obj, key.as_str(), misfit(form)).expect("put");
            });
            let err = validate_batch(id, &doc, vec![change], author, demo.today)
                .expect_err(&format!("{kind} {path} = {:?}", misfit(form)));
            // A sender that is not the sender is named as such first.
            let rules: &[&str] = if form == Form::Sender {
                &["entry.by", "move.by"]
            } else {
                &["schema"]
            };
            assert!(
                rules.contains(&err.rule),
                "{kind} {path}: {err} ({})",
                err.rule
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} fields were tried");
}

#[test]
fn every_field_a_part_holds_is_refused_to_whoever_that_part_is_not() {
    let demo = Demo::new();
    let mut checked = 0;
    for (kind, id, doc) in full_documents(&demo) {
        let mut values = Vec::new();
        writable_values(&doc, &ROOT, fields::root(kind), None, "", &mut values);
        for (path, obj, key, part, form) in values {
            // Someone with no part in the document at all.
            let stranger = &demo.outsider;
            let value = fit(form, &demo);
            let change = forged(&doc, 5, |tx| {
                use automerge::transaction::Transactable;
                tx.put(&obj, key.as_str(), value.clone()).expect("put");
            });
            let err = validate_batch(id, &doc, vec![change], stranger, demo.today)
                .expect_err(&format!("{} writes {kind} {path}", stranger.user));
            let rule = match part {
                Field::AuditHeader => "audit.header",
                Field::AuditContent => "audit.content",
                Field::NcDescription => "nc.description",
                Field::NcOwnerFields | Field::NcImplementationEvidence => "nc.owner_fields",
                Field::NcVerification | Field::NcVerificationEvidence => "nc.verification",
                Field::NcExtension => "nc.extension",
                Field::ReviewContent => "review.content",
            };
            assert!(
                err.rule == rule || err.rule == "doc.not_permitted",
                "{kind} {path}: {err} ({})",
                err.rule
            );
            checked += 1;
        }
    }
    assert!(checked > 30, "only {checked} fields were tried");
}

/// A new entry or item, made by the writer of its part with the fields of
/// the first one the document holds (`skip` left out; who made it and when
/// its own, dates late enough for any rule).
fn new_like(
    doc: &Automerge,
    list: &ObjId,
    object: Object,
    author: &Author,
    device: u8,
    skip: Option<&str>,
) -> automerge::Change {
    use automerge::transaction::Transactable;
    let (first, new_key) = match object {
        Object::Entries(ids, _) => {
            let key = doc.keys(list).next().expect("an entry");
            let new = match ids {
                fields::EntryKey::Response => "sd.item_7@P02",
                fields::EntryKey::Item => "f-77",
            };
            (doc.get(list, key.as_str()), Some(new))
        }
        _ => (doc.get(list, 0), None),
    };
    let Ok(Some((_, first))) = first else {
        panic!("no first entry")
    };
    let specs = object.entry().expect("a map of entries or a list of maps");
    let values: Vec<(String, ScalarValue)> = specs
        .iter()
        .filter(|s| Some(s.key) != skip)
        .filter_map(|s| {
            let Shape::Value(form) = s.shape else {
                return None;
            };
            let v = match form {
                Form::Sender => ScalarValue::Str(author.user.to_string().into()),
                Form::Date => ScalarValue::Str("2026-12-31".into()),
                _ => match doc.get(&first, s.key) {
                    Ok(Some((Value::Scalar(v), _))) => v.into_owned(),
                    _ => return None,
                },
            };
            Some((s.key.to_owned(), v))
        })
        .collect();
    forged(doc, device, |tx| {
        let obj = match new_key {
            Some(k) => tx.put_object(list, k, ObjType::Map).expect("entry"),
            None => {
                let at = tx.length(list);
                tx.insert_object(list, at, ObjType::Map).expect("item")
            }
        };
        for (k, v) in &values {
            tx.put(&obj, k.as_str(), v.clone()).expect("put");
        }
    })
}

/// Optional fields that an entry still needs in some cases: a response's
/// value, which every answer type but a photo and a text has.
const NEEDED_BY_ITS_TYPE: &[(&str, &str)] = &[("responses", "value")];

#[test]
fn a_new_entry_or_item_without_one_of_its_fields_is_refused_exactly_when_the_field_is_required() {
    let demo = Demo::new();
    let (mut required, mut optional) = (0, 0);
    for (kind, id, doc) in full_documents(&demo) {
        for spec in fields::of(kind) {
            let (Shape::Object(object), Some(part)) = (spec.shape, spec.part()) else {
                continue;
            };
            let Some(inner) = object.entry() else {
                continue;
            };
            let author = writer_of(&demo, part);
            let device = device_of(&demo, author);
            let Ok(Some((_, list))) = doc.get(ROOT, spec.key) else {
                panic!("{kind} has no {}", spec.key)
            };
            let whole = new_like(&doc, &list, object, author, device, None);
            validate_batch(id, &doc, vec![whole], author, demo.today)
                .unwrap_or_else(|e| panic!("{kind} {}: a whole new one: {e}", spec.key));
            for field in inner.iter().filter(|s| matches!(s.shape, Shape::Value(_))) {
                let what = format!("{kind} {} without {}", spec.key, field.key);
                let change = new_like(&doc, &list, object, author, device, Some(field.key));
                let judged = validate_batch(id, &doc, vec![change], author, demo.today);
                if field.required {
                    let err = judged.expect_err(&what);
                    assert_eq!(err.rule, "schema", "{what}: {err}");
                    assert!(
                        err.message.contains(&format!("has no '{}'", field.key)),
                        "{what}: {err}"
                    );
                    required += 1;
                } else if !NEEDED_BY_ITS_TYPE.contains(&(spec.key, field.key)) {
                    // The reader takes it without: the table must not require it.
                    judged.unwrap_or_else(|e| panic!("{what}: {e} ({})", e.rule));
                    optional += 1;
                }
            }
        }
    }
    assert!(
        required > 20 && optional > 3,
        "{required} required, {optional} optional fields tried"
    );
}

#[test]
fn an_entry_under_a_key_not_of_its_kind_is_refused_in_every_map_of_entries() {
    use automerge::transaction::Transactable;
    let demo = Demo::new();
    let mut checked = 0;
    for (kind, id, doc) in full_documents(&demo) {
        for spec in fields::of(kind) {
            let (Shape::Object(Object::Entries(ids, _)), Some(part)) = (spec.shape, spec.part())
            else {
                continue;
            };
            let author = writer_of(&demo, part);
            let Ok(Some((_, map))) = doc.get(ROOT, spec.key) else {
                panic!("{kind} has no {}", spec.key)
            };
            // A response key names an item (and a process); an item id is `x-<n>`.
            for bad in ["Not An Id", "f_01", "sd.timeliness@p03", ""] {
                assert!(!ids.fits(bad), "{bad} fits {ids:?}");
                let change = forged(&doc, device_of(&demo, author), |tx| {
                    tx.put_object(&map, bad, ObjType::Map).expect("entry");
                });
                let err = validate_batch(id, &doc, vec![change], author, demo.today)
                    .expect_err(&format!("{kind} {}/{bad:?}", spec.key));
                assert_eq!(err.rule, "schema", "{kind} {}/{bad:?}: {err}", spec.key);
                assert!(err.message.contains("is not a valid entry"), "{err}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 16, "only {checked} keys were tried");
}
