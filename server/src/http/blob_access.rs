//! Who may read a blob.
//!
//! The rule: a caller may read a file when they may read a document whose
//! evidence names it, *and* that evidence entry's hash was written by one of
//! the file's holders: a user who sent the file's whole content, matching its
//! hash (`blob_holders`). Its uploader names it in their own audit, and
//! everyone who may read that audit may see it.
//!
//! Naming a hash is not enough. Before, anyone who learnt a file's hash (from
//! a shared screen, a log, a report) could write it into evidence of an audit
//! they lead and then download the file, though it belonged to an audit they
//! may not read. Now that evidence counts only if its writer holds the file,
//! and holding it takes its content: who has the content gains nothing by
//! downloading it. Who wrote an entry is read from the document itself: the
//! Automerge actor of the operation that set its `sha256`, and the server
//! knows which user each actor id is registered to (DESIGN §4), so no one can
//! write under another's name.

use std::collections::BTreeSet;

use sync_core::automerge::{Automerge, ObjId, ObjType, Prop, ROOT, ReadDoc, Value};
use sync_core::ids::DocumentId;

use super::AppState;
use super::error::ApiError;
use crate::access;
use crate::auth::Caller;
use crate::db::{accounts, blobs, documents};

/// The media type to serve a file with, if the caller may read it.
pub async fn readable(
    state: &AppState,
    caller: &Caller,
    sha256: &str,
) -> Result<Option<String>, ApiError> {
    let db = &state.db;
    let holders = blobs::holders(db.pool(), sha256).await?;
    if holders.is_empty() {
        return Ok(None);
    }
    let author = access::author_of(db, &caller.username).await?;
    let today = access::today();
    for (doc, mime) in blobs::referencing(db.pool(), sha256).await? {
        let Ok(id) = doc.parse::<DocumentId>() else {
            continue;
        };
        let Some(meta) = documents::meta(db, &id).await? else {
            continue;
        };
        if !author.may_read(&meta.context()?, today) {
            continue;
        }
        let Some(doc) = documents::load(db, &id).await? else {
            continue;
        };
        for actor in writers_of(&doc, sha256) {
            let writer = accounts::user_of_actor(db, &actor).await?;
            if writer.is_some_and(|w| holders.contains(&w)) {
                return Ok(Some(mime));
            }
        }
    }
    Ok(None)
}

/// The actors (hex) that wrote a `sha256` field holding `sha256` anywhere in
/// the document as it is now (every concurrent value counts).
pub fn writers_of(doc: &Automerge, sha256: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut objects: Vec<ObjId> = vec![ROOT];
    while let Some(obj) = objects.pop() {
        let props: Vec<Prop> = match doc.object_type(&obj) {
            Ok(ObjType::Map | ObjType::Table) => doc.keys(&obj).map(Prop::Map).collect(),
            Ok(ObjType::List) => (0..doc.length(&obj)).map(Prop::Seq).collect(),
            Ok(ObjType::Text) | Err(_) => continue,
        };
        for prop in props {
            let named_sha256 = matches!(&prop, Prop::Map(k) if k == "sha256");
            for (value, id) in doc.get_all(&obj, prop.clone()).unwrap_or_default() {
                match value {
                    Value::Object(_) => objects.push(id),
                    Value::Scalar(s) if named_sha256 && s.as_str() == Some(sha256) => {
                        if let ObjId::Id(_, actor, _) = id {
                            out.insert(actor.to_hex_string());
                        }
                    }
                    Value::Scalar(_) => {}
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::automerge::transaction::Transactable;
    use sync_core::automerge::{ActorId, AutoCommit};

    #[test]
    fn the_writer_of_each_value_naming_the_hash_is_found()
    -> Result<(), sync_core::automerge::AutomergeError> {
        let owner = ActorId::from(vec![1u8; 16]);
        let thief = ActorId::from(vec![2u8; 16]);
        let mut doc = AutoCommit::new().with_actor(owner.clone());
        let findings = doc.put_object(ROOT, "findings", ObjType::Map)?;
        let f = doc.put_object(&findings, "f-01", ObjType::Map)?;
        let list = doc.put_object(&f, "evidence", ObjType::List)?;
        let e = doc.insert_object(&list, 0, ObjType::Map)?;
        doc.put(&e, "sha256", "aa")?;
        doc.put(&e, "name", "bb")?;
        let mut other = doc.fork().with_actor(thief.clone());
        let e2 = other.insert_object(&list, 1, ObjType::Map)?;
        other.put(&e2, "sha256", "bb")?;
        // The thief overwrites the owner's entry with another hash, concurrently with nothing.
        other.put(&e, "sha256", "cc")?;
        doc.merge(&mut other)?;
        let doc = doc.document();
        assert_eq!(
            writers_of(doc, "bb"),
            BTreeSet::from([thief.to_hex_string()]),
            "a name is not a hash"
        );
        assert_eq!(
            writers_of(doc, "cc"),
            BTreeSet::from([thief.to_hex_string()])
        );
        assert!(
            writers_of(doc, "aa").is_empty(),
            "the owner's value was overwritten"
        );
        Ok(())
    }
}
