//! Rights as they are now. Every few seconds each connection's session,
//! device and user are checked (a disabled user, an ended session or a
//! revoked device is disconnected), and its rights and documents are read
//! again: the hub opens the documents the user may now see and withdraws
//! those they no longer may.
//!
//! One pass over the connections is a [`Round`]: each user's rights and each
//! unit's documents are read once per round, however many connections share
//! them, so the sweep's cost grows with users and units, not with sockets.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};

use sync_core::automerge::ActorId;
use sync_core::ids::DocumentId;
use sync_core::permissions::{Author, DocContext};

use super::hub::HubMsg;
use super::{PeerMeta, SyncHandle, close};
use crate::access;
use crate::db::{Db, DbError, accounts, documents};

/// What one pass over the connections has read so far.
#[derive(Debug, Default)]
struct Round {
    authors: HashMap<String, Author>,
    /// Each user's devices' actor ids.
    actors: HashMap<String, HashMap<String, BTreeSet<ActorId>>>,
    units: HashMap<String, Vec<DocContext>>,
}

impl Round {
    /// The user's rights, read once per round.
    async fn author(&mut self, db: &Db, username: &str) -> Result<Author, DbError> {
        if let Some(a) = self.authors.get(username) {
            return Ok(a.clone());
        }
        let author = access::author_of(db, username).await?;
        self.authors.insert(username.to_owned(), author.clone());
        Ok(author)
    }

    /// The user's rights on one device (changes only under its own actor
    /// ids), each user's devices read once per round.
    async fn author_on(
        &mut self,
        db: &Db,
        username: &str,
        device: &str,
    ) -> Result<Author, DbError> {
        let mut author = self.author(db, username).await?;
        let actors = match self.actors.entry(username.to_owned()) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(access::actors_by_device(db, username).await?),
        };
        author.actors = actors.get(device).cloned().unwrap_or_default();
        Ok(author)
    }

    /// The documents `author` may see now, each unit's documents read once per round.
    async fn visible(&mut self, db: &Db, author: &Author) -> Result<Vec<DocumentId>, DbError> {
        let today = access::today();
        let mut out = Vec::new();
        for unit in access::units_of(&author.grants, today) {
            let docs = match self.units.entry(unit.as_str().to_owned()) {
                Entry::Occupied(e) => e.into_mut(),
                Entry::Vacant(e) => {
                    let metas = documents::meta_of_unit(db, unit.as_str()).await?;
                    let contexts = metas
                        .iter()
                        .map(|m| m.context())
                        .collect::<Result<_, _>>()?;
                    e.insert(contexts)
                }
            };
            out.extend(
                docs.iter()
                    .filter(|ctx| author.may_read(ctx, today))
                    .map(|ctx| ctx.id),
            );
        }
        Ok(out)
    }
}

/// The documents an author may see now (their units' documents, judged by
/// sync-core's reading rule).
pub async fn visible_docs(db: &Db, author: &Author) -> Result<Vec<DocumentId>, DbError> {
    Round::default().visible(db, author).await
}

/// Why a connection may no longer stay open, if it may not.
pub async fn revoked(db: &Db, meta: &PeerMeta) -> Result<Option<&'static str>, DbError> {
    if !accounts::session_live(db, &meta.session, &meta.username).await? {
        return Ok(Some(
            "You have been signed out (or your account disabled). Sign in again.",
        ));
    }
    let device = accounts::find_device(db, &meta.device).await?;
    if device.is_none_or(|d| d.revoked_at.is_some() || d.username != meta.username) {
        return Ok(Some("This device has been revoked."));
    }
    Ok(None)
}

/// Checks every open connection once (or those of one user), reading each
/// user's rights and each unit's documents once.
pub async fn sweep_all(sync: &SyncHandle, only: Option<&str>) {
    if only.is_none() {
        sync.reload_due_rules().await;
    }
    let mut round = Round::default();
    for (peer, meta) in sync.connections() {
        if only.is_some_and(|u| u != meta.username) {
            continue;
        }
        if let Err(e) = sweep_one(sync, peer, &meta, &mut round).await {
            tracing::warn!(peer, cause = %e, "cannot check a connection's rights");
        }
    }
}

/// Runs the sweep forever.
pub async fn run(sync: SyncHandle) {
    let mut interval = tokio::time::interval(sync.config.sweep_interval);
    interval.tick().await;
    loop {
        interval.tick().await;
        sweep_all(&sync, None).await;
    }
}

async fn sweep_one(
    sync: &SyncHandle,
    peer: sync_core::engine::PeerId,
    meta: &PeerMeta,
    round: &mut Round,
) -> Result<(), DbError> {
    if let Some(reason) = revoked(&sync.db, meta).await? {
        tracing::info!(peer, user = %meta.username, device = %meta.device, reason, "disconnecting");
        sync.send(HubMsg::Close {
            peer,
            code: close::UNAUTHORIZED,
            reason: reason.into(),
        });
        return Ok(());
    }
    let author = round
        .author_on(&sync.db, &meta.username, &meta.device)
        .await?;
    let visible = round.visible(&sync.db, &author).await?;
    sync.send(HubMsg::Access {
        peer,
        author: Box::new(author),
        visible,
    });
    Ok(())
}
