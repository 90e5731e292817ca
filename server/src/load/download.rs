//! Phase "download": every tablet signs in, connects, creates the audits it
//! leads online and stays until it holds them and its partner's audits with
//! exactly the server's heads.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use sync_core::edit::Edit;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::http::Http;
use super::tablet::Tablet;
use super::{Deadline, setup::LOAD_PASSWORD};

/// Sign-ins at once (each costs the server an argon2 check).
const SIGN_INS_AT_ONCE: usize = 8;

/// Signs every account in, each with a tablet of its own; in account order.
pub async fn sign_in_all(http: &Http, users: &[String]) -> Result<Vec<Tablet>> {
    let limit = Arc::new(Semaphore::new(SIGN_INS_AT_ONCE));
    let mut tasks = JoinSet::new();
    for (index, user) in users.iter().enumerate() {
        let (http, user, limit) = (http.clone(), user.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await?;
            Tablet::sign_in(&http, index, &user, LOAD_PASSWORD)
                .await
                .with_context(|| format!("sign-in of {user}"))
        });
    }
    let mut tablets = Vec::with_capacity(users.len());
    while let Some(done) = tasks.join_next().await {
        tablets.push(done??);
    }
    tablets.sort_by_key(|t| t.index);
    Ok(tablets)
}

/// What the download phase did.
#[derive(Debug, Default)]
pub struct Downloaded {
    /// Audit documents created.
    pub created: usize,
    /// Bytes sent and received on the sync sockets.
    pub bytes: u64,
    /// Seconds it took.
    pub seconds: f64,
}

/// Runs the download phase; every tablet is offline again at the end.
pub async fn download(
    http: &Http,
    tablets: Vec<Tablet>,
    deadline: Deadline,
) -> Result<(Vec<Tablet>, Downloaded)> {
    let started = Instant::now();
    let mut tasks = JoinSet::new();
    for mut tablet in tablets {
        let http = http.clone();
        tasks.spawn(async move {
            let mut client = tablet.connect(&http).await?;
            let author = tablet.author.clone();
            for (id, header) in &tablet.leads {
                client
                    .edit(*id, &Edit::CreateAudit(header.clone()), &author)
                    .await
                    .with_context(|| format!("{} cannot create {}", tablet.user, header.number))?;
            }
            let want: Vec<_> = tablet.documents().collect();
            let held = client
                .run_until(deadline.left(), |c| {
                    want.iter().all(|d| c.engine.doc(d).is_some()) && c.in_sync()
                })
                .await?;
            anyhow::ensure!(
                held,
                "{} did not receive all of its {} audits in time ({} held)",
                tablet.user,
                want.len(),
                client.engine.doc_ids().count()
            );
            let bytes = client.bytes.0 + client.bytes.1;
            tablet.park(client).await;
            anyhow::Ok((tablet, bytes))
        });
    }
    let mut out = Vec::new();
    let mut stats = Downloaded::default();
    while let Some(done) = tasks.join_next().await {
        let (tablet, bytes) = done??;
        stats.created += tablet.leads.len();
        stats.bytes += bytes;
        out.push(tablet);
    }
    out.sort_by_key(|t| t.index);
    stats.seconds = started.elapsed().as_secs_f64();
    Ok((out, stats))
}
