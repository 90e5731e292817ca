//! The sync socket's limits and refusals, each with its close code, just
//! under and just over: sign-in, origin, message size, connections per user,
//! changes per second per user.

mod common;

use std::time::Duration;

use anyhow::{Context, Result};
use common::{Backend, TestServer};
use futures_util::{SinkExt, StreamExt};
use server::client::ClientError;
use server::sync::close;
use sync_core::edit::Edit;
use sync_core::envelope::{Body, Envelope};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn open(s: &TestServer) -> Result<Ws> {
    Ok(tokio_tungstenite::connect_async(s.ws_url()).await?.0)
}

/// The next close frame's (code, reason), skipping other messages.
async fn closed(ws: &mut Ws) -> Result<(u16, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await? {
            Some(Ok(Message::Close(Some(f)))) => return Ok((f.code.into(), f.reason.to_string())),
            Some(Ok(Message::Close(None))) | None => return Ok((1005, String::new())),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
        }
    }
}

fn code_of(e: ClientError) -> Option<u16> {
    match e {
        ClientError::Closed { code, .. } => Some(code),
        _ => None,
    }
}

fn code_of_any(e: anyhow::Error) -> Option<u16> {
    match e.downcast_ref::<ClientError>() {
        Some(ClientError::Closed { code, .. }) => Some(*code),
        _ => None,
    }
}

on_both! {
    async fn sign_in_must_come_first_in_time_and_be_valid(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| {
            c.sync.auth_timeout = Duration::from_millis(300);
        })
        .await?;
        // Silence: closed with 4408 once the time is up.
        let mut ws = open(&s).await?;
        let (code, reason) = closed(&mut ws).await?;
        assert_eq!(code, close::AUTH_TIMEOUT, "{reason}");
        // A binary frame first: 4400.
        let mut ws = open(&s).await?;
        ws.send(Message::Binary(vec![1, 2, 3].into())).await?;
        assert_eq!(closed(&mut ws).await?.0, close::BAD_HELLO);
        // Not JSON: 4400, with the reason.
        let mut ws = open(&s).await?;
        ws.send(Message::Text("hello".into())).await?;
        let (code, reason) = closed(&mut ws).await?;
        assert_eq!(code, close::BAD_HELLO);
        assert!(reason.contains("sign-in message could not be read"), "{reason}");
        // A bad token: 4401.
        let t = s.tablet("s.khan").await?;
        let mut ws = open(&s).await?;
        ws.send(Message::Text(serde_json::json!({"access_token": "x.y.z", "device_id": t.device}).to_string().into())).await?;
        assert_eq!(closed(&mut ws).await?.0, close::UNAUTHORIZED);
        // Someone else's device: 4401.
        let other = s.tablet("k.iyer").await?;
        let mut ws = open(&s).await?;
        ws.send(Message::Text(serde_json::json!({"access_token": t.token, "device_id": other.device}).to_string().into())).await?;
        let (code, reason) = closed(&mut ws).await?;
        assert_eq!(code, close::UNAUTHORIZED);
        assert!(reason.contains("not registered to you"), "{reason}");
        // The right ones: ready.
        let mut ws = open(&s).await?;
        ws.send(Message::Text(serde_json::json!({"access_token": t.token, "device_id": t.device}).to_string().into())).await?;
        let ready = tokio::time::timeout(Duration::from_secs(10), ws.next()).await?.context("answer")??;
        assert!(matches!(&ready, Message::Text(t) if t.contains("\"ready\":true")), "{ready:?}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_foreign_origin_is_refused_and_the_own_or_a_configured_one_allowed(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, false, |c| {
            c.allowed_origins = vec!["https://sqm.example.gov.in".into()];
        })
        .await?;
        let with_origin = |origin: &str| -> Result<_> {
            let mut req = s.ws_url().into_client_request()?;
            req.headers_mut().insert("Origin", origin.parse()?);
            Ok(req)
        };
        let refused = tokio_tungstenite::connect_async(with_origin("https://evil.example.com")?).await;
        match refused {
            Err(tokio_tungstenite::tungstenite::Error::Http(r)) => assert_eq!(r.status().as_u16(), 403),
            other => panic!("a foreign origin was let in: {other:?}"),
        }
        assert!(tokio_tungstenite::connect_async(with_origin("https://sqm.example.gov.in")?).await.is_ok());
        let own = format!("http://{}", s.addr);
        assert!(tokio_tungstenite::connect_async(with_origin(&own)?).await.is_ok());
        s.stop().await;
        Ok(())
    }
}

/// A syntactically valid sync frame of exactly `len` bytes for a document.
fn frame_of_len(doc: sync_core::ids::DocumentId, len: usize) -> Result<Vec<u8>> {
    let empty = Envelope {
        doc,
        body: Body::Sync(Vec::new()),
    }
    .encode()?;
    let payload = vec![0u8; len - empty.len()];
    let bytes = Envelope {
        doc,
        body: Body::Sync(payload),
    }
    .encode()?;
    anyhow::ensure!(bytes.len() == len, "{} != {len}", bytes.len());
    Ok(bytes)
}

on_both! {
    async fn a_message_at_the_size_limit_is_read_and_one_byte_over_closes_with_1009(backend: Backend) -> Result<()> {
        const LIMIT: usize = 64 * 1024;
        let s = TestServer::start_configured(backend, true, |c| c.sync.max_frame_bytes = LIMIT).await?;
        let mut t = s.tablet("s.khan").await?;
        let doc = sync_core::ids::DocumentId::new_v7(server::db::now_ms(), [7; 10]);
        let mut c = s.connect(&mut t).await?;
        c.send_raw(frame_of_len(doc, LIMIT)?).await?;
        // At the limit: read (and answered with an error envelope, as the payload is junk), not closed.
        let answered = c.run_until(Duration::from_secs(3), |c| c.frames.1 > 0).await?;
        assert!(answered, "no answer to a frame at the limit");
        c.send_raw(frame_of_len(doc, LIMIT + 1)?).await?;
        let end = c.run_until(Duration::from_secs(10), |_| false).await;
        assert_eq!(end.err().and_then(code_of), Some(close::TOO_BIG));
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_user_may_hold_the_allowed_number_of_sockets_and_no_more(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| c.sync.max_connections_per_user = 2).await?;
        let mut a = s.tablet("s.khan").await?;
        let mut b = s.tablet("s.khan").await?;
        let mut c = s.tablet("s.khan").await?;
        let first = s.connect(&mut a).await?;
        let second = s.connect(&mut b).await?;
        let third = s.connect(&mut c).await;
        assert_eq!(third.err().and_then(code_of_any), Some(close::TOO_MANY_CONNECTIONS));
        // One closes; another may open.
        a.park(first).await;
        let mut again = None;
        for _ in 0..50 {
            c.engine = Some(sync_core::engine::Engine::new(sync_core::engine::Side::Device(
                c.author.actors.iter().next().cloned().context("actor")?,
            )));
            match s.connect(&mut c).await {
                Ok(client) => {
                    again = Some(client);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        assert!(again.is_some(), "a freed slot was never given back");
        drop(second);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn changes_per_second_within_the_burst_are_taken_and_past_it_close_with_4429(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| {
            c.sync.change_burst = 10.0;
            c.sync.changes_per_second = 0.01;
        })
        .await?;
        let rao = s.login("a.rao").await?;
        let (status, audit) = s
            .post(
                "/api/v1/admin/units/DEMO-I/audits",
                &rao,
                serde_json::json!({"number": "IA/DEMO-I/2025-26/010", "scope": ["P03"], "planned_from": "2026-02-10",
                    "planned_to": "2026-02-11", "template_version": 2, "lead": "k.iyer"}),
            )
            .await?;
        assert_eq!(status.as_u16(), 201);
        let id: sync_core::ids::DocumentId = audit["id"].as_str().context("id")?.parse()?;
        let mut t = s.tablet("k.iyer").await?;
        let header = sync_core::audit::AuditHeader {
            unit: "DEMO-I".parse()?,
            number: "IA/DEMO-I/2025-26/010".into(),
            scope: vec!["P03".into()],
            template_version: 2,
            lead: "k.iyer".parse()?,
            team: vec!["k.iyer".parse()?],
            start: "2026-02-10".parse()?,
            end: None,
        };
        t.edit_offline(id, Edit::CreateAudit(header))?;
        for i in 0..9 {
            t.edit_offline(id, Edit::SetNotes(format!("note {i}")))?;
        }
        // Ten changes: exactly the burst. Taken.
        let mut c = s.connect(&mut t).await?;
        assert!(c.settle(Duration::from_secs(20)).await?, "the burst was not taken");
        // One more: past it.
        let author = t.author.clone();
        c.edit(id, &Edit::SetNotes("one too many".into()), &author).await?;
        let end = c.run_until(Duration::from_secs(10), |_| false).await;
        assert_eq!(end.err().and_then(code_of), Some(close::RATE_LIMITED));
        // What was sent is stored all the same (it was valid); only the connection is stopped.
        let mut stored = 0;
        for _ in 0..100 {
            let doc = server::db::documents::load(&s.db, &id).await?.context("stored")?;
            stored = doc.get_changes(&[]).len();
            if stored == 11 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(stored, 11);
        s.stop().await;
        Ok(())
    }
}
