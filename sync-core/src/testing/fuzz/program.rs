//! The `validate` target's program: bytes read as raw Automerge writes (see
//! [`super::validate`] for the format), with the keys and values the
//! schemas use, so that random bytes reach the validator's rules rather
//! than Automerge's checksum.

use automerge::transaction::{Transactable, Transaction};
use automerge::{ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ValueRef};

use crate::schema::MAX_TEXT_BYTES;

/// The most writes one `validate` program makes: enough for any edit the
/// app makes (an entry map and its five fields), few enough to stay quick.
pub const MAX_WRITES: usize = 32;

/// Keys a `validate` program writes under, by index: every key of the three
/// schemas, and the entry keys the demo documents hold.
pub const KEYS: &[&str] = &[
    "schema",
    "v",
    "id",
    "unit",
    "audit",
    "process",
    "finding",
    "class",
    "clause",
    "raised_on",
    "header",
    "number",
    "scope",
    "template",
    "lead",
    "team",
    "start",
    "end",
    "responses",
    "findings",
    "notes",
    "events",
    "description",
    "correction",
    "root_cause",
    "actions",
    "extensions",
    "verification",
    "title",
    "minutes",
    "inputs",
    "decisions",
    "held_on",
    "by",
    "at",
    "move",
    "from",
    "note",
    "type",
    "value",
    "text",
    "evidence",
    "sha256",
    "name",
    "mime",
    "size",
    "taken_at",
    "owner",
    "target",
    "done_on",
    "on",
    "due",
    "of",
    "justification",
    "heads",
    "sd.item_0@P02",
    "sd.item_0@P03",
    "sd.item_1@P02",
    "sd.item_9@P08",
    "f-00",
    "f-01",
    "f-02",
    "a-1",
    "a-2",
];

/// Text values a `validate` program writes, by index (the demo's document
/// ids follow them): each is of the form some field requires.
pub const WORDS: &[&str] = &[
    "sqm.audit",
    "sqm.nc",
    "sqm.review",
    "DEMO-I",
    "P02",
    "P03",
    "P08",
    "3.2.1.3",
    "3.4",
    "k.iyer",
    "s.khan",
    "ac.div2",
    "a.rao",
    "p.sharma",
    "2026-01-15",
    "2026-02-15",
    "2025-04-01",
    "2026-01-15T10:00:00Z",
    "2026-01-15T10:00:00.250Z",
    "major",
    "minor",
    "observation",
    "ofi",
    "good_practice",
    "cpna",
    "yn",
    "text",
    "number",
    "date",
    "photo",
    "conform",
    "partly",
    "not_conform",
    "na",
    "yes",
    "no",
    "raise",
    "submit_response",
    "accept_plan",
    "reject_plan",
    "mark_implemented",
    "verify_effective",
    "verify_not_effective",
    "withdraw",
    "reopen",
    "submit_for_review",
    "return_for_edit",
    "issue_report",
    "accept_late_edits",
    "draft",
    "open",
    "in_progress",
    "in_review",
    "report_issued",
    "response",
    "action",
    "f-01",
    "a-1",
    "image/jpeg",
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "",
];

/// The bytes of a `validate` program, read from the front; reading past the end gives `None`.
pub(super) struct Program<'a>(pub(super) &'a [u8]);

impl<'a> Program<'a> {
    pub(super) fn byte(&mut self) -> Option<u8> {
        let (first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(*first)
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (taken, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        taken
    }

    fn text(&mut self, n: usize) -> String {
        String::from_utf8_lossy(self.take(n)).into_owned()
    }
}

/// Reads and makes one write; false once the program has ended.
pub(super) fn write(tx: &mut Transaction<'_>, p: &mut Program<'_>, words: &[String]) -> bool {
    let (Some(op), Some(depth)) = (p.byte(), p.byte()) else {
        return false;
    };
    let mut obj = ROOT;
    for _ in 0..depth % 4 {
        let Some(pick) = p.byte() else {
            return false;
        };
        let children = child_objects(tx, &obj);
        if children.is_empty() {
            break;
        }
        obj = children[usize::from(pick) % children.len()].clone();
    }
    // Automerge refuses writes that do not fit the object (a key into a list,
    // a counter that is not one): the refusal is the outcome, and the
    // program goes on.
    match tx.object_type(&obj) {
        Ok(ObjType::Map | ObjType::Table) => {
            let Some(key) = key(p) else {
                return false;
            };
            let _ = match op % 6 {
                0 | 3 => match value(p, words) {
                    Some(v) => tx.put(&obj, key, v),
                    None => return false,
                },
                1 | 4 => match p.byte() {
                    Some(k) => tx.put_object(&obj, key, obj_type(k)).map(|_| ()),
                    None => return false,
                },
                2 => tx.delete(&obj, key),
                _ => match p.byte() {
                    Some(by) => tx.increment(&obj, key, i64::from(by)),
                    None => return false,
                },
            };
        }
        Ok(ObjType::List) => {
            let Some(at) = p.byte() else {
                return false;
            };
            let len = tx.length(&obj);
            let within = |n: usize| usize::from(at) % n.max(1);
            let _ = match op % 6 {
                0 => match value(p, words) {
                    Some(v) => tx.put(&obj, within(len), v),
                    None => return false,
                },
                1 => match p.byte() {
                    Some(k) => tx.put_object(&obj, within(len), obj_type(k)).map(|_| ()),
                    None => return false,
                },
                2 => tx.delete(&obj, within(len)),
                3 => match value(p, words) {
                    Some(v) => tx.insert(&obj, within(len + 1), v),
                    None => return false,
                },
                4 => match p.byte() {
                    Some(k) => tx
                        .insert_object(&obj, within(len + 1), obj_type(k))
                        .map(|_| ()),
                    None => return false,
                },
                _ => match p.byte() {
                    Some(by) => tx.increment(&obj, within(len), i64::from(by)),
                    None => return false,
                },
            };
        }
        // Text is not used by these documents; its objects only hold the place.
        _ => {}
    }
    true
}

/// The objects directly inside `obj`, in the document's order.
fn child_objects(tx: &Transaction<'_>, obj: &ObjId) -> Vec<ObjId> {
    let is_object = |v: &ValueRef<'_>| matches!(v, ValueRef::Object(_));
    match tx.object_type(obj) {
        Ok(ObjType::List) => tx
            .list_range(obj, ..)
            .filter(|item| is_object(&item.value))
            .map(|item| item.id())
            .collect(),
        Ok(ObjType::Map | ObjType::Table) => tx
            .map_range(obj, ..)
            .filter(|item| is_object(&item.value))
            .map(|item| item.id())
            .collect(),
        _ => Vec::new(),
    }
}

fn key(p: &mut Program<'_>) -> Option<String> {
    let k = usize::from(p.byte()?);
    Some(match KEYS.get(k) {
        Some(key) => (*key).to_owned(),
        None => p.text((k - KEYS.len()) % 17),
    })
}

fn obj_type(k: u8) -> ObjType {
    [ObjType::Map, ObjType::List, ObjType::Text][usize::from(k % 3)]
}

fn value(p: &mut Program<'_>, words: &[String]) -> Option<ScalarValue> {
    let kind = p.byte()?;
    Some(match kind % 12 {
        0 => {
            let i = usize::from(p.byte()?) % words.len().max(1);
            ScalarValue::Str(words.get(i).map_or("", String::as_str).into())
        }
        1 => {
            let n = usize::from(p.byte()?) % 33;
            ScalarValue::Str(p.text(n).into())
        }
        2 => ScalarValue::Str("x".repeat(MAX_TEXT_BYTES + 1).into()),
        3 => ScalarValue::Uint(u64::from(p.byte()?)),
        4 => ScalarValue::Int(-i64::from(p.byte()?)),
        5 => ScalarValue::Int(i64::from(p.byte()?)),
        6 => ScalarValue::Boolean(p.byte()? % 2 == 1),
        7 => ScalarValue::Null,
        8 => ScalarValue::F64(f64::from(p.byte()?) / 7.0),
        9 => ScalarValue::Timestamp(i64::from(p.byte()?) * 86_400_000),
        10 => ScalarValue::Bytes(p.take(4).to_vec()),
        _ => ScalarValue::counter(i64::from(p.byte()?)),
    })
}
