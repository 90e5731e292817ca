//! What a change tried to write, in words a nodal officer can read: one
//! line per operation (`set 'findings/f-01/class' to "major"`), for the
//! changes the server refused and keeps in quarantine. Objects the change
//! made itself are named by their path; those it found in the document are
//! "an existing object" (their path is in the document, not the change).
//! Device text is quoted (`text::quote`): cut, and anything unprintable
//! escaped.

use std::collections::HashMap;

use automerge::legacy::{Key, ObjectId, OpId, OpType};
use automerge::{Change, ScalarValue};

use crate::text::quote;

/// Lines given at most for one change; the rest are counted.
pub const MAX_LINES: usize = 64;

/// A change as words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Described {
    /// The first [`MAX_LINES`] operations, one line each.
    pub lines: Vec<String>,
    /// How many operations were left out.
    pub more: usize,
}

/// Bytes that are not a change.
#[derive(Debug, thiserror::Error)]
#[error("the bytes are not an Automerge change: {0}")]
pub struct NotAChange(String);

/// The change in `bytes`, described; the bytes are read once, and at most
/// [`crate::envelope::MAX_ENVELOPE_BYTES`] of them.
pub fn describe(bytes: &[u8]) -> Result<Described, NotAChange> {
    if bytes.len() > crate::envelope::MAX_ENVELOPE_BYTES {
        return Err(NotAChange(format!(
            "{} bytes is over the limit",
            bytes.len()
        )));
    }
    let change = Change::try_from(bytes).map_err(|e| NotAChange(e.to_string()))?;
    let expanded = change.decode();
    let start = expanded.start_op.get();
    // Objects made by this change, by the id of the operation that made them.
    let mut made: HashMap<OpId, String> = HashMap::new();
    let mut lines = Vec::new();
    let total = expanded.operations.len();
    for (i, op) in expanded.operations.iter().enumerate() {
        let id = OpId(start + i as u64, expanded.actor_id.clone());
        let parent = match &op.obj {
            ObjectId::Root => Some(String::new()),
            ObjectId::Id(obj) => made.get(obj).cloned(),
        };
        let place = match (&parent, &op.key) {
            (Some(p), Key::Map(k)) => format!("'{}'", quote(&format!("{}{k}", path_prefix(p)))),
            (Some(p), Key::Seq(_)) => format!("an item of '{}'", quote(p)),
            (None, Key::Map(k)) => format!("'{}' of an existing object", quote(k)),
            (None, Key::Seq(_)) => "an item of an existing list".to_owned(),
        };
        if let (OpType::Make(_), Some(p)) = (&op.action, &parent) {
            let name = match &op.key {
                Key::Map(k) => format!("{}{k}", path_prefix(p)),
                Key::Seq(_) => format!("{}[item]", path_prefix(p)),
            };
            made.insert(id, name);
        }
        if lines.len() < MAX_LINES {
            lines.push(match &op.action {
                OpType::Make(t) => format!("make {} {place}", kind(*t)),
                OpType::Put(v) => format!("set {place} to {}", value(v)),
                OpType::Delete => format!("remove {place}"),
                OpType::Increment(n) => format!("add {n} to {place}"),
                OpType::MarkBegin(..) | OpType::MarkEnd(..) => format!("mark text at {place}"),
            });
        }
    }
    Ok(Described {
        more: total.saturating_sub(lines.len()),
        lines,
    })
}

fn path_prefix(parent: &str) -> String {
    if parent.is_empty() {
        String::new()
    } else {
        format!("{parent}/")
    }
}

fn kind(t: automerge::ObjType) -> &'static str {
    match t {
        automerge::ObjType::Map | automerge::ObjType::Table => "an object",
        automerge::ObjType::List => "a list",
        automerge::ObjType::Text => "a text",
    }
}

fn value(v: &ScalarValue) -> String {
    match v {
        ScalarValue::Str(s) => format!("\"{}\"", quote(s)),
        ScalarValue::Int(n) => n.to_string(),
        ScalarValue::Uint(n) => n.to_string(),
        ScalarValue::F64(n) => n.to_string(),
        ScalarValue::Counter(c) => format!("a counter at {}", i64::from(c)),
        ScalarValue::Timestamp(t) => format!("the time {t}"),
        ScalarValue::Boolean(b) => b.to_string(),
        ScalarValue::Null => "nothing (null)".to_owned(),
        ScalarValue::Bytes(b) => format!("{} bytes", b.len()),
        ScalarValue::Unknown { bytes, .. } => format!("{} bytes of an unknown kind", bytes.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ObjType, ROOT};

    /// The bytes of the change the edits since the last commit make.
    fn committed(doc: &mut AutoCommit) -> Vec<u8> {
        doc.commit();
        doc.get_last_local_change()
            .expect("change")
            .raw_bytes()
            .to_vec()
    }

    #[test]
    fn a_change_reads_as_one_line_per_write_with_the_paths_it_made() {
        let mut doc = AutoCommit::new();
        let findings = doc.put_object(ROOT, "findings", ObjType::Map).expect("map");
        let f = doc
            .put_object(&findings, "f-01", ObjType::Map)
            .expect("map");
        doc.put(&f, "class", "major").expect("put");
        doc.put(&f, "text", "Register \u{7}missing").expect("put");
        doc.put(ROOT, "v", 2_i64).expect("put");
        let bytes = committed(&mut doc);
        let d = describe(&bytes).expect("a change");
        assert_eq!(
            d.lines,
            [
                "make an object 'findings'",
                "make an object 'findings/f-01'",
                "set 'findings/f-01/class' to \"major\"",
                "set 'findings/f-01/text' to \"Register \\u{0007}missing\"",
                "set 'v' to 2",
            ]
        );
        assert_eq!(d.more, 0);
        // A later change writes into an object it did not make.
        doc.delete(&f, "class").expect("delete");
        let later = committed(&mut doc);
        assert_eq!(
            describe(&later).expect("a change").lines,
            ["remove 'class' of an existing object"]
        );
    }

    #[test]
    fn a_long_change_is_cut_and_the_rest_counted_and_garbage_is_named() {
        let mut doc = AutoCommit::new();
        for i in 0..(MAX_LINES + 10) {
            doc.put(ROOT, format!("k{i}"), i as i64).expect("put");
        }
        let bytes = committed(&mut doc);
        let d = describe(&bytes).expect("a change");
        assert_eq!((d.lines.len(), d.more), (MAX_LINES, 10));
        assert!(describe(b"not a change").is_err());
    }
}
