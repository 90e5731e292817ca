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
/// connection drops. Notices sent while it was down are lost, so once
/// listening again it asks the hub to bring in what the documents changed
/// meanwhile lack (see [`catch_up`]).
pub fn start(sync: SyncHandle) {
    if sync.db.kind() != DbKind::Postgres {
        return;
    }
    tokio::spawn(async move {
        // Since when notices may have been missed (`None`: never listened yet).
        let mut since: Option<i64> = None;
        loop {
            if let Err(e) = listen(&sync, &mut since).await {
                tracing::warn!(cause = %e, "change notices from other servers interrupted; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// How far back a catch-up looks before the last moment notices were known
/// to arrive: servers' clocks differ, and a commit's time is taken before it.
const CATCH_UP_MARGIN_MS: i64 = 60_000;

async fn listen(sync: &SyncHandle, since: &mut Option<i64>) -> Result<(), sqlx::Error> {
    let mut listener = PgListener::connect(sync.db.url()).await?;
    listener.listen(CHANNEL).await?;
    if let Some(from) = *since {
        // Listening again: what was stored while this server did not hear.
        catch_up(sync, from - CATCH_UP_MARGIN_MS).await;
    }
    loop {
        *since = Some(crate::db::now_ms());
        // `None`: the connection was lost (`recv` would reconnect silently,
        // hiding the gap).
        let Some(notice) = listener.try_recv().await? else {
            return Ok(());
        };
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

/// Brings in what was stored since `from` (ms) by any server: the hub reads
/// the changes it lacks of those documents it holds.
async fn catch_up(sync: &SyncHandle, from: i64) {
    match crate::db::documents::updated_since(&sync.db, from).await {
        Ok(docs) => {
            tracing::info!(
                documents = docs.len(),
                "catching up on notices missed while not listening"
            );
            sync.send(HubMsg::CatchUp { docs });
        }
        Err(e) => tracing::error!(cause = %e, "cannot read what changed while notices were missed"),
    }
}
