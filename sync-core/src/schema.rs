//! Typed reading and writing of documents over Automerge.
//!
//! Reading never panics, whatever a document contains: a value of the wrong
//! type or shape is a [`SchemaError`] that names its path (`findings/f-01/class`).
//! A [`Reader`] reads either the current state or the state at given heads,
//! which is how locked audits are read as they were when they were locked.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, ValueRef};

use crate::kind::DocKind;

/// A document that does not match its schema, with the path of the first problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {problem}")]
pub struct SchemaError {
    /// Where the problem is, as `key/key/index`; empty for the root.
    pub path: String,
    /// What is wrong, in words.
    pub problem: String,
}

/// A schema error, scrubbed of anything unprintable (its problem may quote
/// an error from Automerge).
pub(crate) fn schema_error(path: &str, problem: impl Into<String>) -> SchemaError {
    SchemaError {
        path: crate::text::scrub(path.to_owned()),
        problem: crate::text::scrub(problem.into()),
    }
}

/// The path of `key` below `path` (a path made by `join`, or a literal):
/// keys come from devices, so each is quoted (escaped, cut short).
pub(crate) fn join(path: &str, key: &str) -> String {
    let key = crate::text::quote(key);
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}/{key}")
    }
}

/// Reads a document at its current state or at given heads.
///
/// Each object is read whole, once, the first time one of its fields is
/// asked for (one `map_range` or `list_range`), and its fields are then
/// served from memory: with Automerge 0.12 a `get` seeks through the op set
/// every time, so reading a response's six fields one `get` at a time costs
/// several times one pass over the response.
pub(crate) struct Reader<'a> {
    pub(crate) doc: &'a Automerge,
    pub(crate) heads: Option<&'a [ChangeHash]>,
    maps: RefCell<HashMap<ObjId, Fields>>,
    lists: RefCell<HashMap<ObjId, Rc<[Raw]>>>,
    /// Map keys that hold concurrent values (Automerge shows one, the
    /// winner; [`Reader::all_maps`] reads them all), by object.
    contested: RefCell<HashMap<ObjId, Vec<String>>>,
    /// Every non-empty object is in the caches (see [`Reader::whole`]).
    complete: bool,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("heads", &self.heads)
            .finish()
    }
}

/// A map object's fields, sorted by key.
type Fields = Rc<[(String, Raw)]>;

/// One field's raw value: a scalar, an object, or absent.
#[derive(Clone)]
pub(crate) enum Raw {
    Absent,
    Scalar(ScalarValue),
    Object(ObjType, ObjId),
}

fn raw_of(value: ValueRef<'_>, id: impl FnOnce() -> ObjId) -> Raw {
    match value {
        ValueRef::Scalar(s) => Raw::Scalar(s.into()),
        ValueRef::Object(t) => Raw::Object(t, id()),
    }
}

impl<'a> Reader<'a> {
    pub(crate) fn now(doc: &'a Automerge) -> Self {
        Reader::lazy(doc, None)
    }

    /// A reader that reads each object when first asked for.
    fn lazy(doc: &'a Automerge, heads: Option<&'a [ChangeHash]>) -> Self {
        Reader {
            doc,
            heads,
            maps: RefCell::default(),
            lists: RefCell::default(),
            contested: RefCell::default(),
            complete: false,
        }
    }

    /// A reader that takes in the whole document (at `heads`, if given) in
    /// one pass: for reading most of it, one pass is cheaper than one range
    /// per object.
    pub(crate) fn whole(doc: &'a Automerge, heads: Option<&'a [ChangeHash]>) -> Self {
        let mut reader = Reader::lazy(doc, heads);
        {
            let (mut maps, mut lists) = (reader.maps.borrow_mut(), reader.lists.borrow_mut());
            let mut contested = reader.contested.borrow_mut();
            let mut map_run: Vec<(String, Raw)> = Vec::new();
            let mut list_run: Vec<Raw> = Vec::new();
            let mut current: Option<std::sync::Arc<ObjId>> = None;
            let mut flush = |obj: &ObjId, m: &mut Vec<(String, Raw)>, l: &mut Vec<Raw>| {
                if !m.is_empty() {
                    // Lookups search by key.
                    m.sort_by(|a, b| a.0.cmp(&b.0));
                    maps.insert(obj.clone(), std::mem::take(m).into());
                }
                if !l.is_empty() {
                    lists.insert(obj.clone(), std::mem::take(l).into());
                }
            };
            for item in doc.iter_at(ROOT, heads) {
                if current.as_ref().is_none_or(|c| **c != *item.obj) {
                    if let Some(c) = &current {
                        flush(c, &mut map_run, &mut list_run);
                    }
                    current = Some(item.obj.clone());
                }
                match item.item {
                    automerge::iter::DocItem::Map(m) => {
                        let raw = raw_of(m.value.clone(), || m.id());
                        if m.conflict {
                            contested
                                .entry((*item.obj).clone())
                                .or_default()
                                .push(m.key.to_string());
                        }
                        map_run.push((m.key.into_owned(), raw));
                    }
                    automerge::iter::DocItem::List(l) => {
                        list_run.push(raw_of(l.value.clone(), || l.id()));
                    }
                    // Text is read with `text` when asked for.
                    automerge::iter::DocItem::Text(_) => {}
                }
            }
            if let Some(c) = &current {
                flush(c, &mut map_run, &mut list_run);
            }
        }
        // Objects with nothing in them were not visited: they read as empty.
        reader.complete = true;
        reader
    }

    /// The fields of a map object, sorted by key (empty if it is not a map).
    fn map_entries(&self, obj: &ObjId) -> Fields {
        if let Some(e) = self.maps.borrow().get(obj) {
            return e.clone();
        }
        if self.complete {
            return Rc::from([]);
        }
        let range = match self.heads {
            None => self.doc.map_range(obj, ..),
            Some(h) => self.doc.map_range_at(obj, .., h),
        };
        let mut contested = Vec::new();
        let entries: Fields = range
            .map(|m| {
                let raw = raw_of(m.value.clone(), || m.id());
                if m.conflict {
                    contested.push(m.key.to_string());
                }
                (m.key.into_owned(), raw)
            })
            .collect();
        if !contested.is_empty() {
            self.contested.borrow_mut().insert(obj.clone(), contested);
        }
        self.maps.borrow_mut().insert(obj.clone(), entries.clone());
        entries
    }

    /// Whether `key` of the map `obj` holds concurrent values.
    pub(crate) fn is_contested(&self, obj: &ObjId, key: &str) -> bool {
        self.map_entries(obj);
        self.contested
            .borrow()
            .get(obj)
            .is_some_and(|keys| keys.iter().any(|k| k == key))
    }

    /// Every concurrent value of `key` in the map `obj` that is a map, in
    /// Automerge's order (the same on every replica; the value Automerge
    /// shows comes last), each with a reader for it: one value (the one
    /// [`Reader::map`] gives) unless writers wrote the key concurrently.
    /// Values that are not maps are an error, as [`Reader::map`] makes them.
    pub(crate) fn all_maps(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Vec<ObjId>, SchemaError> {
        if !self.is_contested(obj, key) {
            return Ok(vec![self.map(obj, key, path)?]);
        }
        let all = match self.heads {
            None => self.doc.get_all(obj, key),
            Some(h) => self.doc.get_all_at(obj, key, h),
        }
        .map_err(|e| schema_error(&join(path, key), format!("cannot be read ({e})")))?;
        all.into_iter()
            .map(|(value, id)| match value {
                automerge::Value::Object(ObjType::Map) => Ok(id),
                _ => Err(schema_error(&join(path, key), "expected a map")),
            })
            .collect()
    }

    /// A reader of the same version of the document that reads each object
    /// when asked: the values [`Reader::all_maps`] gives besides the one
    /// Automerge shows are not in a [`Reader::whole`]'s caches.
    pub(crate) fn fresh(&self) -> Reader<'a> {
        Reader::lazy(self.doc, self.heads)
    }

    /// The items of a list object (empty if it is not a list).
    fn list_entries(&self, obj: &ObjId) -> Rc<[Raw]> {
        if let Some(e) = self.lists.borrow().get(obj) {
            return e.clone();
        }
        if self.complete {
            return Rc::from([]);
        }
        let range = match self.heads {
            None => self.doc.list_range(obj, ..),
            Some(h) => self.doc.list_range_at(obj, .., h),
        };
        let entries: Rc<[Raw]> = range
            .map(|item| raw_of(item.value.clone(), || item.id()))
            .collect();
        self.lists.borrow_mut().insert(obj.clone(), entries.clone());
        entries
    }

    /// The value under `prop` in `obj` (absent if `obj` is not an object of that kind).
    fn raw<P: Into<automerge::Prop>>(&self, obj: &ObjId, prop: P) -> Raw {
        match prop.into() {
            automerge::Prop::Map(key) => {
                let entries = self.map_entries(obj);
                match entries.binary_search_by(|(k, _)| k.as_str().cmp(&key)) {
                    Ok(i) => entries[i].1.clone(),
                    Err(_) => Raw::Absent,
                }
            }
            automerge::Prop::Seq(index) => self
                .list_entries(obj)
                .get(index)
                .cloned()
                .unwrap_or(Raw::Absent),
        }
    }

    /// A string field; `None` when absent.
    pub(crate) fn opt_str(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<String>, SchemaError> {
        match self.raw(obj, key) {
            Raw::Absent => Ok(None),
            Raw::Scalar(ScalarValue::Str(s)) => Ok(Some(s.to_string())),
            Raw::Object(ObjType::Text, id) => {
                let text = match self.heads {
                    None => self.doc.text(&id),
                    Some(h) => self.doc.text_at(&id, h),
                };
                text.map(Some)
                    .map_err(|e| schema_error(&join(path, key), format!("cannot be read ({e})")))
            }
            _ => Err(schema_error(&join(path, key), "expected text")),
        }
    }

    /// A required string field.
    pub(crate) fn str(&self, obj: &ObjId, key: &str, path: &str) -> Result<String, SchemaError> {
        self.opt_str(obj, key, path)?
            .ok_or_else(|| schema_error(&join(path, key), "is missing"))
    }

    /// A string field parsed into a typed value; `None` when absent.
    pub(crate) fn opt_parse<T: FromStr>(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<T>, SchemaError>
    where
        T::Err: std::fmt::Display,
    {
        match self.opt_str(obj, key, path)? {
            None => Ok(None),
            Some(s) => s
                .parse()
                .map(Some)
                .map_err(|e: T::Err| schema_error(&join(path, key), e.to_string())),
        }
    }

    /// A required string field parsed into a typed value.
    pub(crate) fn parse<T: FromStr>(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<T, SchemaError>
    where
        T::Err: std::fmt::Display,
    {
        self.opt_parse(obj, key, path)?
            .ok_or_else(|| schema_error(&join(path, key), "is missing"))
    }

    /// An unsigned integer field; `None` when absent.
    pub(crate) fn opt_uint(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<u64>, SchemaError> {
        match self.raw(obj, key) {
            Raw::Absent => Ok(None),
            Raw::Scalar(ScalarValue::Uint(u)) => Ok(Some(u)),
            Raw::Scalar(ScalarValue::Int(i)) if i >= 0 => Ok(Some(i as u64)),
            _ => Err(schema_error(
                &join(path, key),
                "expected a whole number of zero or more",
            )),
        }
    }

    /// The object under `prop`, if it is one of type `want`; `path` (the
    /// prop's own) is made only for an error.
    fn object(
        &self,
        obj: &ObjId,
        prop: automerge::Prop,
        path: impl FnOnce() -> String,
        want: ObjType,
    ) -> Result<Option<ObjId>, SchemaError> {
        match self.raw(obj, prop) {
            Raw::Absent => Ok(None),
            Raw::Object(t, id) if t == want => Ok(Some(id)),
            _ => Err(schema_error(
                &path(),
                match want {
                    ObjType::List => "expected a list",
                    _ => "expected a map",
                },
            )),
        }
    }

    /// A nested map; `None` when absent.
    pub(crate) fn opt_map(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<ObjId>, SchemaError> {
        self.object(obj, key.into(), || join(path, key), ObjType::Map)
    }

    /// A required nested map.
    pub(crate) fn map(&self, obj: &ObjId, key: &str, path: &str) -> Result<ObjId, SchemaError> {
        self.opt_map(obj, key, path)?
            .ok_or_else(|| schema_error(&join(path, key), "is missing"))
    }

    /// A nested list; `None` when absent.
    pub(crate) fn opt_list(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<ObjId>, SchemaError> {
        self.object(obj, key.into(), || join(path, key), ObjType::List)
    }

    /// The keys of a map object, in order.
    pub(crate) fn keys(&self, obj: &ObjId) -> Vec<String> {
        self.map_entries(obj)
            .iter()
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// The length of a list object.
    pub(crate) fn len(&self, obj: &ObjId) -> usize {
        self.list_entries(obj).len()
    }

    /// The map at position `index` of a list.
    pub(crate) fn map_at(
        &self,
        list: &ObjId,
        index: usize,
        path: &str,
    ) -> Result<ObjId, SchemaError> {
        let at = || join(path, &index.to_string());
        self.object(list, index.into(), at, ObjType::Map)?
            .ok_or_else(|| schema_error(&at(), "is missing"))
    }

    /// The string at position `index` of a list.
    pub(crate) fn str_at(
        &self,
        list: &ObjId,
        index: usize,
        path: &str,
    ) -> Result<String, SchemaError> {
        match self.raw(list, index) {
            Raw::Scalar(ScalarValue::Str(s)) => Ok(s.to_string()),
            _ => Err(schema_error(
                &join(path, &index.to_string()),
                "expected text",
            )),
        }
    }

    /// Every string of a list field (absent reads as empty).
    pub(crate) fn str_list(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Vec<String>, SchemaError> {
        let Some(list) = self.opt_list(obj, key, path)? else {
            return Ok(Vec::new());
        };
        let path = join(path, key);
        (0..self.len(&list))
            .map(|i| self.str_at(&list, i, &path))
            .collect()
    }

    /// Checks that the document is of the kind expected.
    pub(crate) fn expect_kind(&self, want: DocKind) -> Result<(), SchemaError> {
        match self.kind()? {
            k if k == want => Ok(()),
            other => Err(schema_error(
                "schema",
                format!("expected a {want} document, found {other}"),
            )),
        }
    }

    /// The document's kind from its root `schema` field, checking the version.
    pub(crate) fn kind(&self) -> Result<DocKind, SchemaError> {
        let schema = self.str(&ROOT, "schema", "")?;
        let kind = DocKind::from_schema(&schema).ok_or_else(|| {
            schema_error(
                "schema",
                format!("unknown schema '{}'", crate::text::quote(&schema)),
            )
        })?;
        match self.opt_uint(&ROOT, "v", "")? {
            Some(SCHEMA_VERSION) => Ok(kind),
            Some(v) => Err(schema_error("v", format!("unsupported schema version {v}"))),
            None => Err(schema_error("v", "is missing")),
        }
    }
}

/// The version of every document schema written by this build.
pub const SCHEMA_VERSION: u64 = 1;

/// The longest text a person may type into one field (64 KiB).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

/// Checks a typed text against [`MAX_TEXT_BYTES`].
pub(crate) fn bounded(path: &str, text: String) -> Result<String, SchemaError> {
    if text.len() > MAX_TEXT_BYTES {
        Err(schema_error(
            path,
            format!(
                "text of {} bytes is over the limit of {MAX_TEXT_BYTES}",
                text.len()
            ),
        ))
    } else {
        Ok(text)
    }
}

/// Small helpers for writing typed values inside a transaction.
pub(crate) trait WriteExt: Transactable {
    fn put_str(
        &mut self,
        obj: &ObjId,
        key: &str,
        value: impl ToString,
    ) -> Result<(), automerge::AutomergeError> {
        self.put(obj, key, value.to_string())
    }

    fn put_opt_str<T: ToString>(
        &mut self,
        obj: &ObjId,
        key: &str,
        value: Option<T>,
    ) -> Result<(), automerge::AutomergeError> {
        match value {
            Some(v) => self.put(obj, key, v.to_string()),
            None => Ok(()),
        }
    }

    fn put_str_list<T: ToString>(
        &mut self,
        obj: &ObjId,
        key: &str,
        items: &[T],
    ) -> Result<(), automerge::AutomergeError> {
        let list = self.put_object(obj, key, ObjType::List)?;
        for (i, item) in items.iter().enumerate() {
            self.insert(&list, i, item.to_string())?;
        }
        Ok(())
    }
}

impl<T: Transactable + ?Sized> WriteExt for T {}

#[cfg(test)]
mod tests {
    use automerge::transaction::Transactable;
    use automerge::{ActorId, ROOT};

    use super::*;

    /// A document with a conflict, nested and empty objects, a list and text.
    fn doc() -> Automerge {
        let mut a = Automerge::new();
        a.set_actor(ActorId::from([1u8; 16]));
        let mut tx = a.transaction();
        let m = tx.put_object(ROOT, "m", ObjType::Map).expect("map");
        tx.put(&m, "x", "one").expect("put");
        tx.put_object(&m, "empty", ObjType::Map).expect("map");
        let l = tx.put_object(&m, "l", ObjType::List).expect("list");
        tx.insert(&l, 0, "a").expect("insert");
        tx.insert(&l, 1, "b").expect("insert");
        let t = tx.put_object(ROOT, "t", ObjType::Text).expect("text");
        tx.splice_text(&t, 0, 0, "typed").expect("text");
        tx.commit();
        let mut b = a.fork();
        b.set_actor(ActorId::from([2u8; 16]));
        let mut tx = a.transaction();
        tx.put(&m, "x", "from a").expect("put");
        tx.commit();
        let mut tx = b.transaction();
        tx.put(&m, "x", "from b").expect("put");
        tx.commit();
        a.merge(&mut b).expect("merge");
        a
    }

    #[test]
    fn one_pass_and_lazy_reads_agree_with_get_on_every_field() {
        let doc = doc();
        let (lazy, whole) = (Reader::now(&doc), Reader::whole(&doc, None));
        for r in [&lazy, &whole] {
            let m = r.map(&ROOT, "m", "").expect("m");
            let winner = doc.get(&m, "x").expect("get").map(|(v, _)| v.to_string());
            assert_eq!(
                r.str(&m, "x", "m").ok().map(|s| format!("\"{s}\"")),
                winner,
                "the conflict's winner"
            );
            let empty = r.map(&m, "empty", "m").expect("empty");
            assert!(r.keys(&empty).is_empty());
            assert_eq!(r.str_list(&m, "l", "m").expect("list"), ["a", "b"]);
            assert_eq!(r.str(&ROOT, "t", "").expect("text"), "typed");
            assert_eq!(r.opt_str(&ROOT, "missing", "").expect("absent"), None);
            let err = r.map(&ROOT, "t", "").expect_err("text is no map");
            assert_eq!(err.path, "t");
        }
    }

    #[test]
    fn one_pass_reads_at_heads_see_that_version() {
        let mut doc = doc();
        let before = doc.get_heads();
        let mut tx = doc.transaction();
        tx.put(ROOT, "later", "x").expect("put");
        tx.commit();
        let then = Reader::whole(&doc, Some(&before));
        assert_eq!(then.opt_str(&ROOT, "later", "").expect("read"), None);
        let now = Reader::whole(&doc, None);
        assert_eq!(
            now.opt_str(&ROOT, "later", "").expect("read").as_deref(),
            Some("x")
        );
    }
}
