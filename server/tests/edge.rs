//! The HTTP edge, on SQLite and PostgreSQL: body limits just under and just
//! over, malformed and misshapen JSON, unknown routes, health and metrics.

mod common;

use anyhow::Result;
use common::{Backend, TestServer};
use reqwest::StatusCode;
use serde_json::Value;
use server::config::Limits;

/// A login body of exactly `len` bytes (a long username pads it).
fn login_body(len: usize) -> String {
    let shell = r#"{"username":"","password":"x"}"#;
    let pad = "a".repeat(len - shell.len());
    format!(r#"{{"username":"{pad}","password":"x"}}"#)
}

async fn post_raw(
    s: &TestServer,
    path: &str,
    body: String,
    json: bool,
) -> Result<(StatusCode, Value)> {
    let mut req = s.client.post(format!("{}{path}", s.base)).body(body);
    if json {
        req = req.header("Content-Type", "application/json");
    }
    let res = req.send().await?;
    let status = res.status();
    let value = res.json().await.unwrap_or(Value::Null);
    Ok((status, value))
}

on_both! {
    async fn a_body_at_the_limit_is_read_and_one_byte_more_is_413(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let limit = Limits::default().json_body_bytes;
        let (status, body) = post_raw(&s, "/api/v1/auth/login", login_body(limit), true).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "a body at the limit is read: {body}");
        let (status, body) = post_raw(&s, "/api/v1/auth/login", login_body(limit + 1), true).await?;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
        assert_eq!(body["error"], "payload_too_large");
        assert!(body["message"].as_str().is_some_and(|m| m.contains(&limit.to_string())), "{body}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn bad_json_gets_a_clear_400_and_the_wrong_shape_a_422(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (status, body) = post_raw(&s, "/api/v1/auth/login", r#"{"username": "k.iyer", "password": "#.into(), true).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(body["error"], "bad_request");
        assert!(body["message"].as_str().is_some_and(|m| m.starts_with("The request body is not valid JSON")), "{body}");
        let (status, body) = post_raw(&s, "/api/v1/auth/login", r#"{"user": "k.iyer"}"#.into(), true).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(body["message"].as_str().is_some_and(|m| m.contains("unknown field `user`")), "{body}");
        let (status, body) = post_raw(&s, "/api/v1/auth/login", r#"{"username":"k.iyer","password":"x"}"#.into(), false).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body["message"].as_str().is_some_and(|m| m.contains("Content-Type: application/json")), "{body}");
        let res = s.client.get(format!("{}/api/v1/nothing-here", s.base)).send().await?;
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        let body: Value = res.json().await?;
        assert_eq!(body["error"], "not_found");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn health_and_metrics_report_on_the_server(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let res = s.client.get(format!("{}/healthz", s.base)).send().await?;
        assert_eq!(res.status(), StatusCode::OK);
        let _ = s.login("k.iyer").await?;
        let text = s.client.get(format!("{}/metrics", s.base)).send().await?.text().await?;
        assert!(text.contains(r#"sqm_http_requests_total{method="POST",route="/api/v1/auth/login",status="200"} 1"#), "{text}");
        assert!(text.contains("sqm_http_request_duration_seconds_bucket{route=\"/healthz\""), "{text}");
        assert!(text.contains("sqm_http_requests_in_flight 1"), "this request is in flight: {text}");
        // Once the database is gone, health says so.
        s.db.close().await;
        let res = s.client.get(format!("{}/healthz", s.base)).send().await?;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn invented_http_methods_share_one_metrics_label(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        for name in ["FOO", "BAR", "PROPFIND"] {
            let method = reqwest::Method::from_bytes(name.as_bytes())?;
            let res = s.client.request(method, format!("{}/healthz", s.base)).send().await?;
            assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED, "{name}");
        }
        let text = s.client.get(format!("{}/metrics", s.base)).send().await?.text().await?;
        for name in ["FOO", "BAR", "PROPFIND"] {
            assert!(!text.contains(&format!("method=\"{name}\"")), "{name} is a label: {text}");
        }
        assert!(text.contains(r#"sqm_http_requests_total{method="OTHER",route="/healthz",status="405"} 3"#), "{text}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn commits_are_durable_on_every_connection_whatever_the_database_default(backend: Backend) -> Result<()> {
        let (url, dir, pg) = common::fresh_database(backend).await?;
        if let Some(name) = &pg {
            // A database whose default would acknowledge commits before they are on disk.
            let admin = server::db::Db::connect(common::PG_ADMIN).await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("ALTER DATABASE {name} SET synchronous_commit = off")))
                .execute(admin.pool())
                .await?;
            admin.close().await;
        }
        let s = TestServer::start_at(&url, dir, pg, false, |_| {}).await?;
        // Several at once, so that more than one pooled connection is asked.
        let answers = futures_util::future::join_all((0..4).map(|_| async {
            let mut conn = s.db.pool().acquire().await?;
            let setting: String = match backend {
                Backend::Postgres => sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&mut *conn).await?,
                Backend::Sqlite => {
                    let level: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut *conn).await?;
                    if level == 2 { "on".into() } else { format!("level {level}") }
                }
            };
            anyhow::Ok((setting, conn))
        }))
        .await;
        for a in answers {
            let (setting, _conn) = a?;
            assert_eq!(setting, "on", "{backend:?}");
        }
        s.stop().await;
        Ok(())
    }
}
