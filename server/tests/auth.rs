//! Authentication against a real server, on SQLite and PostgreSQL: bad
//! tokens of every kind are 401, refresh tokens rotate and their reuse ends
//! the session, logout and disabling revoke, failed logins are limited.

mod common;

use anyhow::Result;
use common::{Backend, PASSWORD, TestServer};
use hmac::{KeyInit, Mac};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

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
