//! Authentication against a real server, on SQLite and PostgreSQL: bad
//! tokens of every kind are 401, refresh tokens rotate and their reuse ends
//! the session, logout and disabling revoke, failed logins are limited.

mod common;

use anyhow::Result;
use common::{Backend, PASSWORD, TestServer};
use hmac::{KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::config::TrustedProxy;

const KEY: &[u8] = b"test signing key, 32 bytes long!";

fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn hs256(key: &[u8], msg: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

fn hs384(key: &[u8], msg: &str) -> Vec<u8> {
    let mut mac = hmac::Hmac::<sha2::Sha384>::new_from_slice(key).expect("any key length");
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A token with any header and claims, signed by `sign` over `header.payload`.
fn token(header: &Value, claims: &Value, sign: impl Fn(&str) -> Vec<u8>) -> String {
    let msg = format!(
        "{}.{}",
        b64url(header.to_string().as_bytes()),
        b64url(claims.to_string().as_bytes())
    );
    let sig = sign(&msg);
    format!("{msg}.{}", b64url(&sig))
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims_of(access: &str) -> Result<Value> {
    let payload = access.split('.').nth(1).unwrap_or_default();
    // Decode base64url by hand: the inverse of b64url.
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'-' => 62,
            _ => 63,
        }
    };
    let mut bytes = Vec::new();
    for chunk in payload.as_bytes().chunks(4) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, c)| acc | (val(*c) << (18 - 6 * i)));
        for i in 0..chunk.len().saturating_sub(1) {
            bytes.push(((n >> (16 - 8 * i)) & 0xff) as u8);
        }
    }
    Ok(serde_json::from_slice(&bytes)?)
}

async fn me(s: &TestServer, token: Option<&str>) -> Result<StatusCode> {
    Ok(s.call(Method::GET, "/api/v1/me", token, None).await?.0)
}

on_both! {
    async fn bad_tokens_are_all_401(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (_, tokens) = s.login_tokens("k.iyer", PASSWORD).await?;
        let access = tokens["access_token"].as_str().unwrap_or_default().to_owned();
        let refresh = tokens["refresh_token"].as_str().unwrap_or_default().to_owned();
        assert_eq!(me(&s, Some(&access)).await?, StatusCode::OK, "the good token works");
        let good = claims_of(&access)?;
        let with = |key: &str, value: Value| {
            let mut c = good.clone();
            c[key] = value;
            c
        };
        let without = |key: &str| {
            let mut c = good.clone();
            if let Some(m) = c.as_object_mut() {
                m.remove(key);
            }
            c
        };
        let hs = json!({"alg": "HS256", "typ": "JWT"});
        let sign = |c: &Value| token(&hs, c, |m| hs256(KEY, m));
        let mut tampered = access.clone();
        tampered.pop();
        tampered.push(if access.ends_with('A') { 'B' } else { 'A' });
        let parts: Vec<&str> = access.split('.').collect();
        let other_sub = format!(
            "{}.{}.{}",
            parts[0],
            b64url(with("sub", json!("a.rao")).to_string().as_bytes()),
            parts[2]
        );
        let cases: Vec<(&str, Option<String>)> = vec![
            ("no token", None),
            ("empty bearer", Some(String::new())),
            ("not a JWT", Some("not-a-token".into())),
            ("alg none", Some(token(&json!({"alg": "none", "typ": "JWT"}), &good, |_| Vec::new()))),
            ("alg HS384", Some(token(&json!({"alg": "HS384", "typ": "JWT"}), &good, |m| hs384(KEY, m)))),
            ("alg RS256 with an HMAC signature", Some(token(&json!({"alg": "RS256", "typ": "JWT"}), &good, |m| hs256(KEY, m)))),
            ("wrong key", Some(token(&hs, &good, |m| hs256(b"another key, also 32 bytes long!", m)))),
            ("expired", Some(sign(&with("exp", json!(now() - 10))))),
            ("wrong audience", Some(sign(&with("aud", json!("someone-else"))))),
            ("wrong issuer", Some(sign(&with("iss", json!("evil"))))),
            ("refresh token used as access", Some(refresh.clone())),
            ("typ refresh on an access token", Some(sign(&with("typ", json!("refresh"))))),
            ("unknown typ", Some(sign(&with("typ", json!("id"))))),
            ("no exp", Some(sign(&without("exp")))),
            ("no sub", Some(sign(&without("sub")))),
            ("no iss", Some(sign(&without("iss")))),
            ("tampered payload (another user)", Some(other_sub)),
            ("tampered signature", Some(tampered)),
            ("unknown session", Some(sign(&with("sid", json!("0123456789abcdef0123456789abcdef"))))),
            ("session of another user", Some(sign(&with("sub", json!("a.rao"))))),
        ];
        assert!(cases.len() >= 15);
        for (what, t) in &cases {
            let status = match t {
                Some(t) if t.is_empty() => s
                    .client
                    .get(format!("{}/api/v1/me", s.base))
                    .header("Authorization", "Bearer ")
                    .send()
                    .await?
                    .status(),
                other => me(&s, other.as_deref()).await?,
            };
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
        }
        let basic = s
            .client
            .get(format!("{}/api/v1/me", s.base))
            .header("Authorization", "Basic azppeWVyOnNldm90dGFtLWRlbW8=")
            .send()
            .await?;
        assert_eq!(basic.status(), StatusCode::UNAUTHORIZED, "basic auth");
        let body: Value = basic.json().await?;
        assert_eq!(body["error"], "unauthorized");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("Sign in")), "{body}");
        // Revoked: after logout the same, still unexpired token is refused.
        let (status, _) = s.call(Method::POST, "/api/v1/auth/logout", Some(&access), None).await?;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(me(&s, Some(&access)).await?, StatusCode::UNAUTHORIZED, "revoked by logout");
        let (status, _) = s
            .call(Method::POST, "/api/v1/auth/refresh", None, Some(json!({"refresh_token": refresh})))
            .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "refresh after logout");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn refresh_rotates_and_reuse_ends_the_whole_session(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (_, first) = s.login_tokens("s.khan", PASSWORD).await?;
        let refresh = |t: &Value| json!({"refresh_token": t["refresh_token"]});
        let (status, second) = s
            .call(Method::POST, "/api/v1/auth/refresh", None, Some(refresh(&first)))
            .await?;
        assert_eq!(status, StatusCode::OK);
        assert_ne!(second["refresh_token"], first["refresh_token"], "a new refresh token");
        let access2 = second["access_token"].as_str().unwrap_or_default().to_owned();
        assert_eq!(me(&s, Some(&access2)).await?, StatusCode::OK);
        // The first refresh token again: stolen. The whole family ends.
        let (status, body) = s
            .call(Method::POST, "/api/v1/auth/refresh", None, Some(refresh(&first)))
            .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        assert!(body["message"].as_str().is_some_and(|m| m.contains("already used")), "{body}");
        let (status, _) = s
            .call(Method::POST, "/api/v1/auth/refresh", None, Some(refresh(&second)))
            .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the newest refresh token is revoked too");
        assert_eq!(me(&s, Some(&access2)).await?, StatusCode::UNAUTHORIZED, "and so is its access token");
        // Another login starts a fresh session.
        assert!(s.login("s.khan").await.is_ok());
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn the_hundred_and_first_failed_login_is_429(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        for i in 0..100 {
            let (status, _) = s.login_tokens("p.sharma", "wrong password").await?;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "failed login {}", i + 1);
        }
        let (status, body) = s.login_tokens("p.sharma", PASSWORD).await?;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_eq!(body["error"], "too_many_requests");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn unknown_users_wrong_passwords_and_disabled_accounts_get_one_answer(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (unknown, a) = s.login_tokens("nobody", PASSWORD).await?;
        let (wrong, b) = s.login_tokens("k.iyer", "not the password").await?;
        assert_eq!(unknown, StatusCode::UNAUTHORIZED);
        assert_eq!(wrong, StatusCode::UNAUTHORIZED);
        assert_eq!(a, b, "the two failures cannot be told apart");
        // An administrator disables k.iyer: live sessions end, logins fail.
        let iyer = s.login("k.iyer").await?;
        let admin = s.login("sqm.admin").await?;
        let (status, _) = s.post("/api/v1/admin/users/k.iyer/disable", &admin, json!({})).await?;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(me(&s, Some(&iyer)).await?, StatusCode::UNAUTHORIZED);
        let (status, c) = s.login_tokens("k.iyer", PASSWORD).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(c, b);
        let (status, _) = s.post("/api/v1/admin/users/k.iyer/enable", &admin, json!({})).await?;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let iyer = s.login("k.iyer").await?;
        // A new password ends the sessions signed in with the old one.
        let (status, _) = s
            .call(Method::PUT, "/api/v1/admin/users/k.iyer/password", Some(&admin), Some(json!({"password": "a brand new password"})))
            .await?;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert_eq!(me(&s, Some(&iyer)).await?, StatusCode::UNAUTHORIZED);
        assert_eq!(s.login_tokens("k.iyer", PASSWORD).await?.0, StatusCode::UNAUTHORIZED);
        assert_eq!(s.login_tokens("k.iyer", "a brand new password").await?.0, StatusCode::OK);
        s.stop().await;
        Ok(())
    }
}

/// The server's count of password hashes, read from `/metrics`.
async fn hashes(s: &TestServer) -> Result<u64> {
    let text = s
        .client
        .get(format!("{}/metrics", s.base))
        .send()
        .await?
        .text()
        .await?;
    let line = text
        .lines()
        .find(|l| l.starts_with("sqm_password_hashes_total "))
        .ok_or_else(|| anyhow::anyhow!("no sqm_password_hashes_total in {text}"))?;
    Ok(line.rsplit(' ').next().unwrap_or_default().parse()?)
}

const LIMIT: usize = 5;

on_both! {
    async fn concurrent_wrong_passwords_hash_no_more_than_the_limit(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| c.login.max_failures = LIMIT).await?;
        let before = hashes(&s).await?;
        let answers = futures_util::future::join_all(
            (0..40).map(|_| s.login_tokens("p.sharma", "a wrong guess")),
        )
        .await;
        let mut codes = Vec::new();
        for a in answers {
            codes.push(a?.0);
        }
        let hashed = hashes(&s).await? - before;
        let refused = codes.iter().filter(|c| **c == StatusCode::TOO_MANY_REQUESTS).count();
        let wrong = codes.iter().filter(|c| **c == StatusCode::UNAUTHORIZED).count();
        assert_eq!((wrong, refused), (LIMIT, 40 - LIMIT), "{codes:?}");
        assert_eq!(hashed, LIMIT as u64, "{hashed} passwords were hashed for a limit of {LIMIT}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_right_password_within_the_limit_is_let_in_and_not_counted(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| c.login.max_failures = 3).await?;
        for _ in 0..2 {
            assert_eq!(s.login_tokens("p.sharma", "a wrong guess").await?.0, StatusCode::UNAUTHORIZED);
        }
        assert_eq!(s.login_tokens("p.sharma", PASSWORD).await?.0, StatusCode::OK, "the third try, right");
        assert_eq!(
            s.login_tokens("p.sharma", "a wrong guess").await?.0,
            StatusCode::UNAUTHORIZED,
            "the right one took no place: the third failure is still checked"
        );
        let (status, body) = s.login_tokens("p.sharma", PASSWORD).await?;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "three failures: {body}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn logins_past_the_hash_queue_are_503_with_retry_after(backend: Backend) -> Result<()> {
        let s = TestServer::start_configured(backend, true, |c| {
            c.login.hash_threads = 1;
            c.login.hash_queue = 2;
        })
        .await?;
        let before = hashes(&s).await?;
        let hold = s.auth.hasher().hold().await?;
        let queued: Vec<_> = ["k.iyer", "s.khan"]
            .into_iter()
            .map(|user| {
                let (client, base) = (s.client.clone(), s.base.clone());
                tokio::spawn(async move {
                    let body = json!({"username": user, "password": PASSWORD});
                    client.post(format!("{base}/api/v1/auth/login")).json(&body).send().await.map(|r| r.status())
                })
            })
            .collect();
        // Wait (for an event, not a time) until both wait for the held thread.
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
        while s.auth.hasher().waiting() < 2 {
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "the logins never queued");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
        let res = s
            .client
            .post(format!("{}/api/v1/auth/login", s.base))
            .json(&json!({"username": "a.rao", "password": PASSWORD}))
            .send()
            .await?;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(res.headers().get("retry-after").and_then(|v| v.to_str().ok()), Some("2"));
        let body: Value = res.json().await?;
        assert_eq!(body["error"], "busy", "{body}");
        drop(hold);
        for q in queued {
            assert_eq!(q.await??, StatusCode::OK, "a login that waited in the queue");
        }
        assert_eq!(hashes(&s).await? - before, 2, "the refused login was never hashed");
        // The refused login was not counted against a.rao: she signs in.
        assert!(s.login("a.rao").await.is_ok());
        s.stop().await;
        Ok(())
    }
}

/// A wrong-password login of `user` through a proxy naming `forwarded` as the client.
async fn through_proxy(s: &TestServer, user: &str, forwarded: &str) -> Result<StatusCode> {
    Ok(s.client
        .post(format!("{}/api/v1/auth/login", s.base))
        .header("X-Forwarded-For", forwarded)
        .json(&json!({"username": user, "password": "a wrong guess"}))
        .send()
        .await?
        .status())
}

on_both! {
    async fn forwarded_addresses_count_only_from_a_trusted_proxy(backend: Backend) -> Result<()> {
        // 127.0.0.1 is not trusted: every login counts against it, whatever the header says.
        let proxy: TrustedProxy = "10.0.0.0/8".parse().map_err(anyhow::Error::msg)?;
        let s = TestServer::start_configured(backend, true, move |c| {
            c.login.max_failures = 2;
            c.trusted_proxies = vec![proxy];
        })
        .await?;
        let codes = [
            through_proxy(&s, "x.one", "203.0.113.1").await?,
            through_proxy(&s, "x.two", "203.0.113.2").await?,
            through_proxy(&s, "x.three", "203.0.113.3").await?,
        ];
        assert_eq!(codes, [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS]);
        s.stop().await;

        // 127.0.0.1 is the trusted proxy: each forwarded client has its own count.
        let proxy: TrustedProxy = "127.0.0.1".parse().map_err(anyhow::Error::msg)?;
        let s = TestServer::start_configured(backend, true, move |c| {
            c.login.max_failures = 2;
            c.trusted_proxies = vec![proxy];
        })
        .await?;
        for (i, user) in ["x.one", "x.two", "x.three"].iter().enumerate() {
            let status = through_proxy(&s, user, &format!("6.6.6.6, 203.0.113.{i}")).await?;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "client {i}");
        }
        let same = [
            through_proxy(&s, "y.one", "203.0.113.9").await?,
            through_proxy(&s, "y.two", "203.0.113.9").await?,
            through_proxy(&s, "y.three", "7.7.7.7, 203.0.113.9").await?,
        ];
        assert_eq!(same, [StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED, StatusCode::TOO_MANY_REQUESTS]);
        // A remote client through the proxy is not this machine: no metrics for it.
        let metrics = s.client.get(format!("{}/metrics", s.base)).header("X-Forwarded-For", "203.0.113.9").send().await?;
        assert_eq!(metrics.status(), StatusCode::UNAUTHORIZED);
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn one_refresh_token_used_twice_at_once_ends_the_session_without_a_fault(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        for round in 0..6 {
            let (_, tokens) = s.login_tokens("s.khan", PASSWORD).await?;
            let body = json!({"refresh_token": tokens["refresh_token"]});
            let answers = futures_util::future::join_all((0..3).map(|_| {
                s.call(Method::POST, "/api/v1/auth/refresh", None, Some(body.clone()))
            }))
            .await;
            let mut fresh = Vec::new();
            for a in answers {
                let (status, answer) = a?;
                assert!(
                    status == StatusCode::OK || status == StatusCode::UNAUTHORIZED,
                    "round {round}: {status} {answer}"
                );
                if status == StatusCode::OK {
                    fresh.push(answer);
                }
            }
            assert!(fresh.len() <= 1, "round {round}: {} refreshes succeeded", fresh.len());
            // The reuse ended the session: the first access token and any new pair are dead.
            let access = tokens["access_token"].as_str().unwrap_or_default();
            assert_eq!(me(&s, Some(access)).await?, StatusCode::UNAUTHORIZED, "round {round}");
            for f in fresh {
                let again = json!({"refresh_token": f["refresh_token"]});
                let (status, _) = s.call(Method::POST, "/api/v1/auth/refresh", None, Some(again)).await?;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "round {round}: the winner's new token");
            }
        }
        s.stop().await;
        Ok(())
    }
}
