//! Every input the server's fuzzers ever kept, replayed through the same
//! functions the fuzz targets call (`server::fuzzing`): the seed corpus in
//! `fuzz/corpus/<target>/` and the inputs that once crashed or stalled in
//! `tests/fixtures/fuzz/<target>/`.
//!
//! The ignored test writes the seed corpus again
//! (`cargo test -p server --test fuzz_fixtures -- --ignored`).

use server::auth::jwt::{AUDIENCE, Claims, ISSUER, Keys, TokenType};
use server::fuzzing;
use server::secret::Secret;
use sync_core::testing::fuzz::saved::{replay, root, write};

#[test]
fn saved_login_bodies_replay_without_a_finding() {
    replay("login_json", fuzzing::login_json);
}

#[test]
fn saved_tokens_replay_and_none_is_accepted() {
    replay("jwt", fuzzing::jwt);
}

/// Base64url without padding, as JWTs are written.
fn b64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Claims as the server issues them (`auth::Auth::issue`), expired at the demo's date.
fn claims(typ: TokenType, exp: u64) -> Claims {
    Claims {
        iss: ISSUER.into(),
        aud: AUDIENCE.into(),
        sub: "k.iyer".into(),
        exp,
        iat: exp - 900,
        typ,
        sid: "5e55101d5e55101d5e55101d5e55101d".into(),
        jti: "0a0b0c0d0e0f10111213141516171819".into(),
    }
}

/// Writes the seed corpus of the login body and the token: real login
/// bodies and near misses, and tokens signed as the server signs them
/// (expired, with the fuzz key), by another key, and with `alg: none`.
#[test]
#[ignore = "writes fuzz/corpus; run by hand to regenerate it"]
fn write_seed_corpus() {
    let corpus = root().join("fuzz/corpus");
    let dir = corpus.join("login_json");
    let bodies: [(&str, &str); 6] = [
        (
            "lead",
            r#"{"username":"k.iyer","password":"sevottam-demo"}"#,
        ),
        (
            "spaced",
            "{\n  \"password\": \"sevottam-demo\",\n  \"username\": \"a.rao\"\n}",
        ),
        (
            "unknown-field",
            r#"{"username":"s.khan","password":"sevottam-demo","remember":true}"#,
        ),
        ("array", r#"["ac.div2","sevottam-demo"]"#),
        (
            "escaped",
            r#"{"username":"p.sharma","password":"sev\u00f6ttam \"demo\""}"#,
        ),
        ("wrong-type", r#"{"username":"k.iyer","password":12345}"#),
    ];
    for (name, body) in bodies {
        write(&dir, name, body.as_bytes());
    }

    let dir = corpus.join("jwt");
    // 2026-01-13, the demo audit's first day: long past for every run.
    let expired = 1_768_262_400;
    let keys = fuzzing::keys();
    let sign = |keys: &Keys, c: &Claims| keys.sign(c).expect("claims sign");
    write(
        &dir,
        "access-expired",
        sign(keys, &claims(TokenType::Access, expired)).as_bytes(),
    );
    write(
        &dir,
        "refresh-expired",
        sign(keys, &claims(TokenType::Refresh, expired)).as_bytes(),
    );
    let other = Keys::new(&Secret::new(vec![0x42; 32]));
    let far = expired + 100 * 365 * 86_400;
    write(
        &dir,
        "access-other-key",
        sign(&other, &claims(TokenType::Access, far)).as_bytes(),
    );
    let payload = serde_json::to_vec(&claims(TokenType::Access, far)).expect("claims serialise");
    let unsigned = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(&payload)
    );
    write(&dir, "alg-none", unsigned.as_bytes());
}
