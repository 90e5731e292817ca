//! Typed reading and writing of documents over Automerge.
//!
//! Reading never panics, whatever a document contains: a value of the wrong
//! type or shape is a [`SchemaError`] that names its path (`findings/f-01/class`).
//! A [`Reader`] reads either the current state or the state at given heads,
//! which is how locked audits are read as they were when they were locked.

use std::str::FromStr;

use automerge::transaction::Transactable;
use automerge::{Automerge, ChangeHash, ObjId, ObjType, ROOT, ReadDoc, ScalarValue, Value};

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

pub(crate) fn schema_error(path: &str, problem: impl Into<String>) -> SchemaError {
    SchemaError {
        path: path.to_owned(),
        problem: problem.into(),
    }
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}/{key}")
    }
}

/// Reads a document at its current state or at given heads.
#[derive(Clone, Copy)]
pub(crate) struct Reader<'a> {
    pub(crate) doc: &'a Automerge,
    pub(crate) heads: Option<&'a [ChangeHash]>,
}

impl std::fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("heads", &self.heads)
            .finish()
    }
}

/// One field's raw value: a scalar, an object, or absent.
pub(crate) enum Raw {
    Absent,
    Scalar(ScalarValue),
    Object(ObjType, ObjId),
}

impl<'a> Reader<'a> {
    pub(crate) fn now(doc: &'a Automerge) -> Self {
        Reader { doc, heads: None }
    }

    pub(crate) fn at(doc: &'a Automerge, heads: &'a [ChangeHash]) -> Self {
        Reader {
            doc,
            heads: Some(heads),
        }
    }

    fn raw<P: Into<automerge::Prop>>(
        &self,
        obj: &ObjId,
        prop: P,
        path: &str,
    ) -> Result<Raw, SchemaError> {
        let got = match self.heads {
            None => self.doc.get(obj, prop),
            Some(h) => self.doc.get_at(obj, prop, h),
        };
        match got {
            Ok(None) => Ok(Raw::Absent),
            Ok(Some((Value::Scalar(s), _))) => Ok(Raw::Scalar(s.into_owned())),
            Ok(Some((Value::Object(t), id))) => Ok(Raw::Object(t, id)),
            Err(e) => Err(schema_error(path, format!("cannot be read ({e})"))),
        }
    }

    /// A string field; `None` when absent.
    pub(crate) fn opt_str(
        &self,
        obj: &ObjId,
        key: &str,
        path: &str,
    ) -> Result<Option<String>, SchemaError> {
        let path = join(path, key);
        match self.raw(obj, key, &path)? {
            Raw::Absent => Ok(None),
            Raw::Scalar(ScalarValue::Str(s)) => Ok(Some(s.to_string())),
            Raw::Object(ObjType::Text, id) => {
                let text = match self.heads {
                    None => self.doc.text(&id),
                    Some(h) => self.doc.text_at(&id, h),
                };
                text.map(Some)
                    .map_err(|e| schema_error(&path, format!("cannot be read ({e})")))
            }
            _ => Err(schema_error(&path, "expected text")),
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
        let path = join(path, key);
        match self.raw(obj, key, &path)? {
            Raw::Absent => Ok(None),
            Raw::Scalar(ScalarValue::Uint(u)) => Ok(Some(u)),
            Raw::Scalar(ScalarValue::Int(i)) if i >= 0 => Ok(Some(i as u64)),
            _ => Err(schema_error(
                &path,
                "expected a whole number of zero or more",
            )),
        }
    }

    fn object(
        &self,
        obj: &ObjId,
        prop: automerge::Prop,
        path: &str,
        want: ObjType,
    ) -> Result<Option<ObjId>, SchemaError> {
        match self.raw(obj, prop, path)? {
            Raw::Absent => Ok(None),
            Raw::Object(t, id) if t == want => Ok(Some(id)),
            _ => Err(schema_error(
                path,
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
        self.object(obj, key.into(), &join(path, key), ObjType::Map)
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
        self.object(obj, key.into(), &join(path, key), ObjType::List)
    }

    /// The keys of a map object, in order.
    pub(crate) fn keys(&self, obj: &ObjId) -> Vec<String> {
        match self.heads {
            None => self.doc.keys(obj).collect(),
            Some(h) => self.doc.keys_at(obj, h).collect(),
        }
    }

    /// The length of a list object.
    pub(crate) fn len(&self, obj: &ObjId) -> usize {
        match self.heads {
            None => self.doc.length(obj),
            Some(h) => self.doc.length_at(obj, h),
        }
    }

    /// The map at position `index` of a list.
    pub(crate) fn map_at(
        &self,
        list: &ObjId,
        index: usize,
        path: &str,
    ) -> Result<ObjId, SchemaError> {
        let path = join(path, &index.to_string());
        self.object(list, index.into(), &path, ObjType::Map)?
            .ok_or_else(|| schema_error(&path, "is missing"))
    }

    /// The string at position `index` of a list.
    pub(crate) fn str_at(
        &self,
        list: &ObjId,
        index: usize,
        path: &str,
    ) -> Result<String, SchemaError> {
        let path = join(path, &index.to_string());
        match self.raw(list, index, &path)? {
            Raw::Scalar(ScalarValue::Str(s)) => Ok(s.to_string()),
            _ => Err(schema_error(&path, "expected text")),
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
        let kind = DocKind::from_schema(&schema)
            .ok_or_else(|| schema_error("schema", format!("unknown schema '{schema}'")))?;
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
