//! Several `sqm serve` processes on one PostgreSQL: each writer announces the
//! documents it committed (`pg_notify` inside the transaction, so the notice
//! goes out only with the commit), and each process listens, bringing the
//! changes stored by the others to its own connected devices. SQLite serves
//! one process, so there is nothing to do there.

use std::time::Duration;

use sqlx::postgres::PgListener;
use sync_core::ids::DocumentId;

use super::SyncHandle;
use super::hub::HubMsg;
use crate::db::accounts::random_id;
use crate::db::{DbError, DbKind, Tx};

/// The channel the processes talk on.
pub const CHANNEL: &str = "sqm_changes";

/// A new id for a server, so it can tell its own notices from the others'.
pub fn new_server_id() -> String {
    random_id()
}

/// Announces, with the commit of `tx`, that server `me` changed a document.
pub async fn announce(tx: &mut Tx, me: &str, doc: &DocumentId) -> Result<(), DbError> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(format!("{me} {doc}"))
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Listens for other processes' notices (PostgreSQL only), reconnecting if the
/// connection drops.
pub fn start(sync: SyncHandle) {
    if sync.db.kind() != DbKind::Postgres {
        return;
    }
    tokio::spawn(async move {
        loop {
            if let Err(e) = listen(&sync).await {
                tracing::warn!(cause = %e, "change notices from other servers interrupted; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

async fn listen(sync: &SyncHandle) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(sync.db.url()).await?;
    listener.listen(CHANNEL).await?;
    loop {
        let notice = listener.recv().await?;
        let mut parts = notice.payload().split(' ');
        let (Some(from), Some(doc)) = (parts.next(), parts.next()) else {
            continue;
        };
        if from == &*sync.id {
            continue;
        }
        if let Ok(doc) = doc.parse::<DocumentId>() {
            sync.send(HubMsg::External { doc });
        }
    }
}
