//! Rights as they are now. Every few seconds each connection's session,
//! device and user are checked (a disabled user, an ended session or a
//! revoked device is disconnected), and its rights and documents are read
//! again: the hub opens the documents the user may now see and withdraws
//! those they no longer may.

use sync_core::ids::DocumentId;
use sync_core::permissions::Author;

use super::hub::HubMsg;
use super::{PeerMeta, SyncHandle, close};
use crate::access;
use crate::db::{Db, DbError, accounts, documents};

/// The documents an author may see now (their units' documents, judged by
/// sync-core's reading rule).
pub async fn visible_docs(db: &Db, author: &Author) -> Result<Vec<DocumentId>, DbError> {
    let today = access::today();
    let mut out = Vec::new();
    for unit in access::units_of(&author.grants, today) {
        for meta in documents::meta_of_unit(db, unit.as_str()).await? {
            if author.may_read(&meta.context()?, today) {
                out.push(meta.id);
            }
        }
    }
    Ok(out)
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

/// Runs the sweep forever.
pub async fn run(sync: SyncHandle) {
    let mut interval = tokio::time::interval(sync.config.sweep_interval);
    interval.tick().await;
    loop {
        interval.tick().await;
        for (peer, meta) in sync.connections() {
            if let Err(e) = sweep_one(&sync, peer, &meta).await {
                tracing::warn!(peer, cause = %e, "cannot check a connection's rights");
            }
        }
    }
}

pub(crate) async fn sweep_one(
    sync: &SyncHandle,
    peer: sync_core::engine::PeerId,
    meta: &PeerMeta,
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
    let author = access::author_of(&sync.db, &meta.username).await?;
    let visible = visible_docs(&sync.db, &author).await?;
    sync.send(HubMsg::Access {
        peer,
        author: Box::new(author),
        visible,
    });
    Ok(())
}
