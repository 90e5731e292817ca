//! Blobs end to end, on SQLite and PostgreSQL: uploads whole and in parts,
//! re-sent parts, gaps, hash checks, the size cap, and downloads only for
//! those who may read a document whose evidence names the file.

mod common;

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::sync_help::{finding, holds, nc_link, new_id};
use common::{Backend, TestServer};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_RANGE, CONTENT_TYPE, ETAG};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sync_core::audit::{AuditHeader, Evidence};
use sync_core::edit::Edit;
use sync_core::ids::DocumentId;
use sync_core::nc::EvidenceOf;

const SETTLE: Duration = Duration::from_secs(20);

/// Bytes that are not text: NULs, bytes over 0x7f, no valid UTF-8 to speak of.
fn content(n: usize, seed: u8) -> Vec<u8> {
    (0..n)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ ((i >> 8) as u8))
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn blob(sha: &str) -> String {
    format!("/api/v1/blobs/{sha}")
}

/// Sends bytes to `PUT /api/v1/blobs/{sha}`, whole (`range` None) or as the
/// part `range` = (start, end inclusive, total) of the file.
async fn put(
    s: &TestServer,
    token: Option<&str>,
    sha: &str,
    range: Option<(usize, usize, usize)>,
    bytes: &[u8],
) -> Result<(StatusCode, Value)> {
    let mut req = s
        .client
        .put(format!("{}{}", s.base, blob(sha)))
        .header(CONTENT_TYPE, "application/octet-stream")
        .body(bytes.to_vec());
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some((start, end, total)) = range {
        req = req.header(CONTENT_RANGE, format!("bytes {start}-{end}/{total}"));
    }
    let res = req.send().await?;
    let status = res.status();
    let text = res.text().await?;
    Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

/// Sends `file[start..=end]` as a part of `file`.
async fn part(
    s: &TestServer,
    token: &str,
    file: &[u8],
    start: usize,
    end: usize,
) -> Result<(StatusCode, Value)> {
    let sha = sha(file);
    put(
        s,
        Some(token),
        &sha,
        Some((start, end, file.len())),
        &file[start..=end],
    )
    .await
}

/// `GET /api/v1/blobs/{sha}`: (status, Content-Type, bytes).
async fn download(s: &TestServer, token: &str, sha: &str) -> Result<(StatusCode, String, Vec<u8>)> {
    let res = s
        .client
        .get(format!("{}{}", s.base, blob(sha)))
        .bearer_auth(token)
        .send()
        .await?;
    let status = res.status();
    let kind = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if status == StatusCode::OK {
        let etag = res.headers().get(ETAG).context("no ETag")?.to_str()?;
        ensure!(etag == format!("\"{sha}\""), "ETag {etag}");
    }
    Ok((status, kind, res.bytes().await?.to_vec()))
}

async fn status(s: &TestServer, token: &str, sha: &str) -> Result<Value> {
    let (code, body) = s.get(&format!("{}/status", blob(sha)), token).await?;
    ensure!(code == StatusCode::OK, "status: {code} {body}");
    Ok(body)
}

/// The complete file the server stores: (size, received, complete, bytes), if any.
async fn stored(s: &TestServer, sha: &str) -> Result<Option<(i64, i64, bool, Vec<u8>)>> {
    let row: Option<(i64, i64, Option<i64>, Vec<u8>)> =
        sqlx::query_as("SELECT size, received, complete_at, data FROM blobs WHERE sha256 = $1")
            .bind(sha)
            .fetch_optional(s.db.pool())
            .await?;
    Ok(row.map(|(size, received, done, data)| (size, received, done.is_some(), data)))
}

/// A user's unfinished upload of a file: (size, received, bytes), if any.
async fn partial(s: &TestServer, sha: &str, user: &str) -> Result<Option<(i64, i64, Vec<u8>)>> {
    Ok(sqlx::query_as(
        "SELECT size, received, data FROM blob_uploads WHERE sha256 = $1 AND username = $2",
    )
    .bind(sha)
    .bind(user)
    .fetch_optional(s.db.pool())
    .await?)
}

fn expect(what: &str, got: (StatusCode, Value), want: StatusCode) -> Result<Value> {
    ensure!(
        got.0 == want,
        "{what}: expected {want}, got {} {}",
        got.0,
        got.1
    );
    Ok(got.1)
}

/// Plans an audit of Demo-I with K. Iyer as lead and S. Khan on the team.
async fn plan(s: &TestServer, number: &str) -> Result<(DocumentId, AuditHeader)> {
    plan_led(s, number, "k.iyer", &["s.khan"]).await
}

/// Plans an audit of Demo-I with this lead and team members.
async fn plan_led(
    s: &TestServer,
    number: &str,
    lead: &str,
    members: &[&str],
) -> Result<(DocumentId, AuditHeader)> {
    let rao = s.login("a.rao").await?;
    let (status, audit) = s
        .post(
            "/api/v1/admin/units/DEMO-I/audits",
            &rao,
            json!({
                "number": number, "scope": ["P03", "3.4"], "planned_from": "2026-02-10",
                "planned_to": "2026-02-11", "template_version": 2, "lead": lead, "members": members
            }),
        )
        .await?;
    ensure!(status.as_u16() == 201, "{audit}");
    let id: DocumentId = audit["id"].as_str().context("id")?.parse()?;
    let header = AuditHeader {
        unit: "DEMO-I".parse()?,
        number: number.into(),
        scope: vec!["P03".into(), "3.4".into()],
        template_version: 2,
        lead: lead.parse()?,
        team: std::iter::once(lead)
            .chain(members.iter().copied())
            .map(str::parse)
            .collect::<Result<_, _>>()?,
        start: "2026-02-10".parse()?,
        end: Some("2026-02-11".parse()?),
    };
    Ok((id, header))
}

on_both! {
    async fn a_file_uploaded_in_three_parts_is_served_to_those_who_may_read_its_audit(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let iyer = s.login("k.iyer").await?;
        let file = content(10_000, 7);
        let hash = sha(&file);
        let before = status(&s, &iyer, &hash).await?;
        ensure!(before == json!({"sha256": hash, "size": null, "received": 0, "complete": false}), "{before}");

        let first = expect("part 1", part(&s, &iyer, &file, 0, 3_999).await?, StatusCode::ACCEPTED)?;
        ensure!(first == json!({"sha256": hash, "size": 10_000, "received": 4_000, "complete": false}), "{first}");
        ensure!(status(&s, &iyer, &hash).await?["received"] == 4_000);
        let second = expect("part 2", part(&s, &iyer, &file, 4_000, 7_999).await?, StatusCode::ACCEPTED)?;
        ensure!(second["received"] == 8_000 && second["complete"] == false, "{second}");
        let last = expect("part 3", part(&s, &iyer, &file, 8_000, 9_999).await?, StatusCode::CREATED)?;
        ensure!(last == json!({"sha256": hash, "size": 10_000, "received": 10_000, "complete": true}), "{last}");
        let kept = stored(&s, &hash).await?.context("stored")?;
        ensure!(kept.3 == file, "the stored bytes differ from the file");

        // No document names it yet: nobody may download it, not even its uploader.
        let (code, _, _) = download(&s, &iyer, &hash).await?;
        ensure!(code == StatusCode::NOT_FOUND, "before any reference: {code}");

        // The lead records a finding with the photo as evidence.
        let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/007").await?;
        let mut lead = s.tablet("k.iyer").await?;
        let mut client = s.connect(&mut lead).await?;
        let a = lead.author.clone();
        client.edit(audit, &Edit::CreateAudit(header), &a).await?;
        client.edit(audit, &Edit::Move { mv: "start".into(), note: String::new() }, &a).await?;
        let photo = Evidence {
            sha256: hash.parse()?,
            name: "register-page-14.jpg".into(),
            mime: "image/jpeg".into(),
            size: 10_000,
            taken_at: None,
        };
        client.edit(audit, &finding(vec![photo])?, &a).await?;
        ensure!(client.settle(SETTLE).await?, "the lead's tablet did not settle");

        // The audit's team and the unit's nodal officer may read the audit.
        for user in ["k.iyer", "s.khan", "a.rao"] {
            let token = s.login(user).await?;
            let (code, kind, bytes) = download(&s, &token, &hash).await?;
            ensure!(code == StatusCode::OK, "{user}: {code}");
            ensure!(kind == "image/jpeg", "{user}: Content-Type {kind}");
            ensure!(bytes == file, "{user}: the bytes differ");
        }
        // The process owner sees NCs, not the audit: the file does not exist for them.
        let div2 = s.login("ac.div2").await?;
        let (code, _, body) = download(&s, &div2, &hash).await?;
        ensure!(code == StatusCode::NOT_FOUND, "ac.div2: {code}");
        let unknown = sha(b"never uploaded");
        let (_, _, unknown_body) = download(&s, &div2, &unknown).await?;
        ensure!(body == unknown_body, "a hidden file answers unlike an unknown one");

        // The evidence is taken off the finding: the reference goes with it.
        client.edit(audit, &finding(Vec::new())?, &a).await?;
        ensure!(client.settle(SETTLE).await?, "the lead's tablet did not settle");
        let rao = s.login("a.rao").await?;
        let (code, _, _) = download(&s, &rao, &hash).await?;
        ensure!(code == StatusCode::NOT_FOUND, "after the evidence was removed: {code}");
        lead.park(client).await;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_file_the_process_owner_attaches_to_an_nc_is_served_to_every_reader_of_the_nc(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        // The lead raises an NC on P03 from a finding.
        let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/007").await?;
        let mut lead = s.tablet("k.iyer").await?;
        let mut iyer = s.connect(&mut lead).await?;
        let a = lead.author.clone();
        iyer.edit(audit, &Edit::CreateAudit(header), &a).await?;
        iyer.edit(audit, &Edit::Move { mv: "start".into(), note: String::new() }, &a).await?;
        iyer.edit(audit, &finding(Vec::new())?, &a).await?;
        let nc = new_id(0x52);
        let create = Edit::CreateNc { link: nc_link(audit)?, description: "Amendment beyond 15 days.".into(), provisional: String::new() };
        iyer.edit(nc, &create, &a).await?;
        iyer.edit(nc, &Edit::Move { mv: "raise".into(), note: String::new() }, &a).await?;
        ensure!(iyer.settle(SETTLE).await?, "the lead's tablet did not settle");
        lead.park(iyer).await;

        // P03's owner uploads a scan and attaches it as implementation evidence.
        let div2 = s.login("ac.div2").await?;
        let file = content(6_000, 91);
        let hash = sha(&file);
        expect("upload", put(&s, Some(&div2), &hash, None, &file).await?, StatusCode::CREATED)?;
        let mut owner = s.tablet("ac.div2").await?;
        let mut client = s.connect(&mut owner).await?;
        holds(&s, &mut client, &[nc]).await?;
        let scan = Evidence {
            sha256: hash.parse()?,
            name: "register-updated.pdf".into(),
            mime: "application/pdf".into(),
            size: 6_000,
            taken_at: None,
        };
        let attach = Edit::AttachNcEvidence { of: EvidenceOf::Implementation, file: scan };
        client.edit(nc, &attach, &owner.author).await?;
        ensure!(client.settle(SETTLE).await?, "the owner's tablet did not settle");

        // Every reader of the NC may download it: its owner, the audit's
        // team and the nodal officer; an auditor off the team may not.
        for user in ["ac.div2", "k.iyer", "s.khan", "a.rao"] {
            let token = s.login(user).await?;
            let (code, kind, bytes) = download(&s, &token, &hash).await?;
            ensure!(code == StatusCode::OK, "{user}: {code}");
            ensure!(kind == "application/pdf", "{user}: Content-Type {kind}");
            ensure!(bytes == file, "{user}: the bytes differ");
        }
        let sharma = s.login("p.sharma").await?;
        let (code, _, _) = download(&s, &sharma, &hash).await?;
        ensure!(code == StatusCode::NOT_FOUND, "p.sharma: {code}");
        owner.park(client).await;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_part_sent_again_and_a_complete_file_sent_again_change_nothing(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let khan = s.login("s.khan").await?;
        let file = content(3_000, 200);
        let hash = sha(&file);
        expect("part 1", part(&s, &khan, &file, 0, 999).await?, StatusCode::ACCEPTED)?;
        let again = expect("part 1 again", part(&s, &khan, &file, 0, 999).await?, StatusCode::ACCEPTED)?;
        ensure!(again["received"] == 1_000, "{again}");
        expect("part 2", part(&s, &khan, &file, 1_000, 1_999).await?, StatusCode::ACCEPTED)?;
        // A lost answer: the device sends part 1 and part 2 again.
        for (start, end) in [(0, 999), (1_000, 1_999), (500, 1_499)] {
            let again = expect("a part again", part(&s, &khan, &file, start, end).await?, StatusCode::ACCEPTED)?;
            ensure!(again["received"] == 2_000, "{again}");
        }
        let kept = partial(&s, &hash, "s.khan").await?.context("stored")?;
        ensure!(kept.1 == 2_000 && kept.2 == file[..2_000], "a re-sent part was written again");
        // A part that overlaps what the server has: only the new bytes are added.
        let done = expect("overlap", part(&s, &khan, &file, 1_500, 2_999).await?, StatusCode::CREATED)?;
        ensure!(done["complete"] == true, "{done}");
        ensure!(stored(&s, &hash).await?.context("stored")?.3 == file);

        // The complete file, sent again whole or in part: 200, nothing changes.
        let whole = expect("whole again", put(&s, Some(&khan), &hash, None, &file).await?, StatusCode::OK)?;
        ensure!(whole == json!({"sha256": hash, "size": 3_000, "received": 3_000, "complete": true}), "{whole}");
        expect("a part again", part(&s, &khan, &file, 1_000, 1_999).await?, StatusCode::OK)?;
        let iyer = s.login("k.iyer").await?;
        expect("another user", put(&s, Some(&iyer), &hash, None, &file).await?, StatusCode::OK)?;
        let kept = stored(&s, &hash).await?.context("stored")?;
        ensure!(kept == (3_000, 3_000, true, file.clone()), "the complete file changed");

        // A file sent whole in one request is complete at once.
        let other = content(777, 3);
        let one = expect("whole", put(&s, Some(&khan), &sha(&other), None, &other).await?, StatusCode::CREATED)?;
        ensure!(one["received"] == 777 && one["complete"] == true, "{one}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_part_after_a_gap_is_409_with_the_bytes_the_server_has(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let iyer = s.login("k.iyer").await?;
        let file = content(300, 9);
        let hash = sha(&file);
        let refused = expect("nothing yet", part(&s, &iyer, &file, 100, 199).await?, StatusCode::CONFLICT)?;
        ensure!(refused["received"] == 0 && refused["error"] == "conflict", "{refused}");
        ensure!(stored(&s, &hash).await?.is_none(), "a refused part was kept");
        expect("part 1", part(&s, &iyer, &file, 0, 99).await?, StatusCode::ACCEPTED)?;
        let refused = expect("gap", part(&s, &iyer, &file, 200, 299).await?, StatusCode::CONFLICT)?;
        let fields: Vec<&String> = refused.as_object().context("object")?.keys().collect();
        ensure!(fields == ["error", "message", "received"], "{refused}");
        ensure!(refused["error"] == "conflict" && refused["received"] == 100, "{refused}");
        ensure!(refused["message"].as_str().is_some_and(|m| m.contains("100")), "{refused}");
        ensure!(partial(&s, &hash, "k.iyer").await?.context("stored")?.1 == 100);
        // The device resumes where the server says.
        expect("part 2", part(&s, &iyer, &file, 100, 199).await?, StatusCode::ACCEPTED)?;
        expect("part 3", part(&s, &iyer, &file, 200, 299).await?, StatusCode::CREATED)?;

        // Another size than the upload in progress: 409 from the middle, a fresh start from byte 0.
        let file = content(500, 1);
        let hash = sha(&file);
        expect("part 1", part(&s, &iyer, &file, 0, 99).await?, StatusCode::ACCEPTED)?;
        let wrong = put(&s, Some(&iyer), &hash, Some((100, 199, 600)), &file[100..200]).await?;
        let wrong = expect("other size", wrong, StatusCode::CONFLICT)?;
        ensure!(wrong["received"] == 0, "{wrong}");
        let restart = put(&s, Some(&iyer), &hash, Some((0, 99, 600)), &file[..100]).await?;
        let restart = expect("start over", restart, StatusCode::ACCEPTED)?;
        ensure!(restart["size"] == 600 && restart["received"] == 100, "{restart}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn content_that_does_not_match_its_hash_is_422_and_not_kept(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let iyer = s.login("k.iyer").await?;
        let file = content(1_200, 4);
        let claimed = sha(b"some other file");
        let refused = expect("whole", put(&s, Some(&iyer), &claimed, None, &file).await?, StatusCode::UNPROCESSABLE_ENTITY)?;
        ensure!(refused["message"].as_str().is_some_and(|m| m.contains("does not match its hash")), "{refused}");
        ensure!(stored(&s, &claimed).await?.is_none(), "a wrong file was kept");

        // In parts: the last part finds the mismatch and the whole upload goes.
        let range = |a: usize, b: usize| Some((a, b, file.len()));
        expect("part 1", put(&s, Some(&iyer), &claimed, range(0, 599), &file[..600]).await?, StatusCode::ACCEPTED)?;
        let refused = put(&s, Some(&iyer), &claimed, range(600, 1_199), &file[600..]).await?;
        expect("part 2", refused, StatusCode::UNPROCESSABLE_ENTITY)?;
        ensure!(stored(&s, &claimed).await?.is_none(), "a wrong upload was kept");
        ensure!(partial(&s, &claimed, "k.iyer").await?.is_none(), "a wrong upload was kept");
        let after = status(&s, &iyer, &claimed).await?;
        ensure!(after == json!({"sha256": claimed, "size": null, "received": 0, "complete": false}), "{after}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_file_at_the_size_cap_is_accepted_and_one_byte_more_is_413(backend: Backend) -> Result<()> {
        const CAP: usize = 1_000;
        let s = TestServer::start_configured(backend, true, |c| {
            c.limits.blob_bytes = CAP;
            c.limits.blob_part_bytes = 400;
        })
        .await?;
        let iyer = s.login("k.iyer").await?;
        let at_cap = content(CAP, 11);
        expect("at the cap", put(&s, Some(&iyer), &sha(&at_cap), None, &at_cap).await?, StatusCode::CREATED)?;

        let over = content(CAP + 1, 12);
        let hash = sha(&over);
        let refused = expect("over the cap", put(&s, Some(&iyer), &hash, None, &over).await?, StatusCode::PAYLOAD_TOO_LARGE)?;
        ensure!(refused["error"] == "payload_too_large", "{refused}");
        ensure!(refused["message"].as_str().is_some_and(|m| m.contains("1000 bytes")), "{refused}");
        let refused = expect("a part of a file over the cap", part(&s, &iyer, &over, 0, 399).await?, StatusCode::PAYLOAD_TOO_LARGE)?;
        ensure!(refused["message"].as_str().is_some_and(|m| m.contains("1001 bytes")), "{refused}");
        ensure!(stored(&s, &hash).await?.is_none(), "a file over the cap was kept");

        // At the cap in parts of at most the part limit; a bigger part is 413.
        let file = content(CAP, 13);
        let refused = expect("a part over the limit", part(&s, &iyer, &file, 0, 400).await?, StatusCode::PAYLOAD_TOO_LARGE)?;
        ensure!(refused["message"].as_str().is_some_and(|m| m.contains("at most 400 bytes")), "{refused}");
        expect("part 1", part(&s, &iyer, &file, 0, 399).await?, StatusCode::ACCEPTED)?;
        expect("part 2", part(&s, &iyer, &file, 400, 799).await?, StatusCode::ACCEPTED)?;
        expect("part 3", part(&s, &iyer, &file, 800, 999).await?, StatusCode::CREATED)?;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn callers_without_credentials_or_a_role_and_bad_requests_are_refused(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let file = content(100, 5);
        let hash = sha(&file);
        expect("PUT unauthenticated", put(&s, None, &hash, None, &file).await?, StatusCode::UNAUTHORIZED)?;
        for path in [blob(&hash), format!("{}/status", blob(&hash))] {
            let (code, _) = s.call(reqwest::Method::GET, &path, None, None).await?;
            ensure!(code == StatusCode::UNAUTHORIZED, "GET {path}: {code}");
        }

        // An account with no role in force may not upload or ask.
        let rao = s.login("a.rao").await?;
        let account = json!({"username": "t.nobody", "display_name": "T. Nobody", "password": "long enough password"});
        expect("new account", s.post("/api/v1/admin/users", &rao, account).await?, StatusCode::CREATED)?;
        let (_, tokens) = s.login_tokens("t.nobody", "long enough password").await?;
        let nobody = tokens["access_token"].as_str().context("access_token")?.to_owned();
        expect("PUT without a role", put(&s, Some(&nobody), &hash, None, &file).await?, StatusCode::FORBIDDEN)?;
        let (code, _) = s.get(&format!("{}/status", blob(&hash)), &nobody).await?;
        ensure!(code == StatusCode::FORBIDDEN, "status without a role: {code}");
        ensure!(stored(&s, &hash).await?.is_none());

        let iyer = s.login("k.iyer").await?;
        for bad in ["abc", &hash.to_uppercase(), &format!("{hash}0")] {
            let refused = expect("a bad hash", put(&s, Some(&iyer), bad, None, &file).await?, StatusCode::UNPROCESSABLE_ENTITY)?;
            ensure!(refused["message"].as_str().is_some_and(|m| m.contains("sha256")), "{refused}");
            let (code, _) = s.get(&blob(bad), &iyer).await?;
            ensure!(code == StatusCode::UNPROCESSABLE_ENTITY, "GET {bad}: {code}");
        }
        // A Content-Range that is not a part of the file, or a body unlike it: 400.
        for (range, body) in [("bytes 0-99/*", &file[..]), ("bytes 50-40/100", &file[..]), ("bytes 0-99/100", &file[..50])] {
            let res = s.client.put(format!("{}{}", s.base, blob(&hash))).bearer_auth(&iyer)
                .header(CONTENT_RANGE, range).body(body.to_vec()).send().await?;
            ensure!(res.status() == StatusCode::BAD_REQUEST, "{range}: {}", res.status());
        }
        let res = s.client.put(format!("{}{}", s.base, blob(&hash))).bearer_auth(&iyer)
            .header(CONTENT_TYPE, "multipart/form-data; boundary=x").body(file.clone()).send().await?;
        ensure!(res.status() == StatusCode::BAD_REQUEST, "a form: {}", res.status());
        ensure!(stored(&s, &hash).await?.is_none());
        // No Content-Type at all is fine.
        let res = s.client.put(format!("{}{}", s.base, blob(&hash))).bearer_auth(&iyer).body(file.clone()).send().await?;
        ensure!(res.status() == StatusCode::CREATED, "no Content-Type: {}", res.status());
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn devices_sending_the_same_file_at_once_end_with_one_complete_copy(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let iyer = s.login("k.iyer").await?;
        let khan = s.login("s.khan").await?;
        let file = content(50_000, 21);
        let hash = sha(&file);
        let tokens = [&iyer, &khan, &iyer, &khan];
        let answers = futures_util::future::join_all(
            tokens.iter().map(|t| put(&s, Some(t), &hash, None, &file)),
        )
        .await;
        let mut codes = Vec::new();
        for a in answers {
            codes.push(a?.0);
        }
        codes.sort();
        ensure!(codes == [StatusCode::OK, StatusCode::OK, StatusCode::OK, StatusCode::CREATED], "{codes:?}");

        // In parts, racing: every answer is a success or a 409 to resume from, never a fault.
        let file = content(40_000, 22);
        let hash = sha(&file);
        let resume = |token: &'static str| {
            let (s, file, hash) = (&s, &file, &hash);
            async move {
                let token = s.login(token).await?;
                for _ in 0..50 {
                    let from = status(s, &token, hash).await?["received"].as_u64().context("received")? as usize;
                    if from == file.len() {
                        return Ok::<_, anyhow::Error>(());
                    }
                    let end = (from + 9_999).min(file.len() - 1);
                    let (code, body) = part(s, &token, file, from, end).await?;
                    ensure!(
                        [StatusCode::OK, StatusCode::CREATED, StatusCode::ACCEPTED, StatusCode::CONFLICT].contains(&code),
                        "{code} {body}"
                    );
                }
                anyhow::bail!("the upload never completed")
            }
        };
        let done = futures_util::future::join_all(["k.iyer", "s.khan", "a.rao"].map(resume)).await;
        for d in done {
            d?;
        }
        let kept = stored(&s, &hash).await?.context("stored")?;
        ensure!(kept == (40_000, 40_000, true, file.clone()), "the racing uploads did not end in the file");
        s.stop().await;
        Ok(())
    }
}

fn photo_of(hash: &str, size: u64) -> Result<Evidence> {
    Ok(Evidence {
        sha256: hash.parse()?,
        name: "register-page-14.jpg".into(),
        mime: "image/jpeg".into(),
        size,
        taken_at: None,
    })
}

/// Creates a planned audit on its lead's tablet with one finding naming `evidence`.
async fn audit_naming(
    s: &TestServer,
    audit: DocumentId,
    header: AuditHeader,
    evidence: Vec<Evidence>,
) -> Result<()> {
    let mut lead = s.tablet(header.lead.as_str()).await?;
    let mut client = s.connect(&mut lead).await?;
    let a = lead.author.clone();
    client.edit(audit, &Edit::CreateAudit(header), &a).await?;
    client
        .edit(
            audit,
            &Edit::Move {
                mv: "start".into(),
                note: String::new(),
            },
            &a,
        )
        .await?;
    client.edit(audit, &finding(evidence)?, &a).await?;
    ensure!(
        client.settle(SETTLE).await?,
        "the lead's tablet did not settle"
    );
    lead.park(client).await;
    Ok(())
}

on_both! {
    async fn a_hash_named_in_ones_own_evidence_does_not_open_someone_elses_file(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let iyer = s.login("k.iyer").await?;
        let file = content(5_000, 31);
        let hash = sha(&file);
        expect("upload", put(&s, Some(&iyer), &hash, None, &file).await?, StatusCode::CREATED)?;
        // K. Iyer's audit names the photo; P. Sharma is not on its team.
        let (audit, header) = plan(&s, "IA/DEMO-I/2025-26/011").await?;
        audit_naming(&s, audit, header, vec![photo_of(&hash, 5_000)?]).await?;
        let sharma = s.login("p.sharma").await?;
        ensure!(download(&s, &sharma, &hash).await?.0 == StatusCode::NOT_FOUND, "p.sharma reads an audit not theirs");
        // P. Sharma learns the hash and writes it into the evidence of an audit they lead.
        let (theirs, header) = plan_led(&s, "IA/DEMO-I/2025-26/012", "p.sharma", &[]).await?;
        audit_naming(&s, theirs, header, vec![photo_of(&hash, 5_000)?]).await?;
        let (code, _, _) = download(&s, &sharma, &hash).await?;
        ensure!(code == StatusCode::NOT_FOUND, "the hash alone opened the file: {code}");
        // Those who may read K. Iyer's audit still may.
        for user in ["k.iyer", "s.khan", "a.rao"] {
            let token = s.login(user).await?;
            let (code, _, bytes) = download(&s, &token, &hash).await?;
            ensure!(code == StatusCode::OK && bytes == file, "{user}: {code}");
        }
        // Whoever has the content may name it: once P. Sharma sends it, their evidence counts.
        expect("the same file from p.sharma", put(&s, Some(&sharma), &hash, None, &file).await?, StatusCode::OK)?;
        let (code, _, bytes) = download(&s, &sharma, &hash).await?;
        ensure!(code == StatusCode::OK && bytes == file, "after sending it: {code}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn an_upload_in_progress_is_its_uploaders_own(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let iyer = s.login("k.iyer").await?;
        let khan = s.login("s.khan").await?;
        let file = content(3_000, 41);
        let hash = sha(&file);
        expect("k.iyer's part 1", part(&s, &iyer, &file, 0, 999).await?, StatusCode::ACCEPTED)?;
        let theirs = status(&s, &khan, &hash).await?;
        ensure!(theirs == json!({"sha256": hash, "size": null, "received": 0, "complete": false}), "{theirs}");
        let refused = expect("s.khan's part 2", part(&s, &khan, &file, 1_000, 1_999).await?, StatusCode::CONFLICT)?;
        ensure!(refused["received"] == 0, "{refused}");
        // S. Khan starting over with another size leaves K. Iyer's upload alone.
        let other = put(&s, Some(&khan), &hash, Some((0, 99, 5_000)), &file[..100]).await?;
        expect("s.khan's own start", other, StatusCode::ACCEPTED)?;
        let mine = status(&s, &iyer, &hash).await?;
        ensure!(mine["size"] == 3_000 && mine["received"] == 1_000, "{mine}");
        expect("k.iyer's part 2", part(&s, &iyer, &file, 1_000, 2_999).await?, StatusCode::CREATED)?;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn a_users_files_are_held_to_their_quota_just_under_and_just_over(backend: Backend) -> Result<()> {
        const QUOTA: u64 = 1_000;
        let s = TestServer::start_configured(backend, true, |c| c.limits.blob_quota_bytes = QUOTA).await?;
        // P. Sharma holds none of the demo's files (they count like any other).
        let sharma = s.login("p.sharma").await?;
        let first = content(600, 51);
        expect("600 bytes", put(&s, Some(&sharma), &sha(&first), None, &first).await?, StatusCode::CREATED)?;
        let second = content(400, 52);
        expect("400 more: at the quota", put(&s, Some(&sharma), &sha(&second), None, &second).await?, StatusCode::CREATED)?;
        let one = content(1, 53);
        let refused = put(&s, Some(&sharma), &sha(&one), None, &one).await?;
        ensure!(refused.0 == StatusCode::INSUFFICIENT_STORAGE, "one byte over: {} {}", refused.0, refused.1);
        ensure!(refused.1["error"] == "quota_exceeded", "{}", refused.1);
        ensure!(refused.1["message"].as_str().is_some_and(|m| m.contains("1000 of the 1000 bytes")), "{}", refused.1);
        ensure!(stored(&s, &sha(&one)).await?.is_none(), "a file over the quota was kept");
        expect("a file held, sent again", put(&s, Some(&sharma), &sha(&first), None, &first).await?, StatusCode::OK)?;
        // Another user has a quota of their own.
        let khan = s.login("s.khan").await?;
        let big = content(1_000, 54);
        expect("s.khan's 1000", put(&s, Some(&khan), &sha(&big), None, &big).await?, StatusCode::CREATED)?;
        // An unfinished upload counts with its whole size.
        let rao = s.login("a.rao").await?;
        let long = content(700, 55);
        expect("a.rao's part 1 of 700", part(&s, &rao, &long, 0, 99).await?, StatusCode::ACCEPTED)?;
        let over = content(301, 56);
        let refused = put(&s, Some(&rao), &sha(&over), None, &over).await?;
        ensure!(refused.0 == StatusCode::INSUFFICIENT_STORAGE, "701 + 300: {}", refused.0);
        let under = content(300, 57);
        expect("700 + 300", put(&s, Some(&rao), &sha(&under), None, &under).await?, StatusCode::CREATED)?;
        let start = put(&s, Some(&rao), &sha(&over), Some((0, 9, 301)), &over[..10]).await?;
        ensure!(start.0 == StatusCode::INSUFFICIENT_STORAGE, "a part of a file over the quota: {}", start.0);
        expect("a.rao finishes the 700", part(&s, &rao, &long, 100, 699).await?, StatusCode::CREATED)?;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn unfinished_uploads_expire_after_their_age(backend: Backend) -> Result<()> {
        let file = content(500, 61);
        let other = content(500, 62);
        let hash = sha(&file);
        // Younger than the age: kept, and resumed where it stopped.
        let s = TestServer::start_configured(backend, true, |c| c.limits.upload_ttl = Duration::from_secs(3600)).await?;
        let iyer = s.login("k.iyer").await?;
        expect("part 1", part(&s, &iyer, &file, 0, 99).await?, StatusCode::ACCEPTED)?;
        expect("another upload", part(&s, &iyer, &other, 0, 99).await?, StatusCode::ACCEPTED)?;
        ensure!(status(&s, &iyer, &hash).await?["received"] == 100);
        expect("part 2", part(&s, &iyer, &file, 100, 499).await?, StatusCode::CREATED)?;
        s.stop().await;
        // Past the age (here none): the next upload's sweep drops it.
        let s = TestServer::start_configured(backend, true, |c| c.limits.upload_ttl = Duration::ZERO).await?;
        let iyer = s.login("k.iyer").await?;
        expect("part 1", part(&s, &iyer, &file, 0, 99).await?, StatusCode::ACCEPTED)?;
        expect("another upload", part(&s, &iyer, &other, 0, 99).await?, StatusCode::ACCEPTED)?;
        ensure!(partial(&s, &hash, "k.iyer").await?.is_none(), "an expired upload was kept");
        let after = status(&s, &iyer, &hash).await?;
        ensure!(after["received"] == 0 && after["size"].is_null(), "{after}");
        let refused = expect("part 2", part(&s, &iyer, &file, 100, 499).await?, StatusCode::CONFLICT)?;
        ensure!(refused["received"] == 0, "{refused}");
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn uploads_stored_before_uploads_were_per_user_upgrade_to_their_uploaders(backend: Backend) -> Result<()> {
        let (url, dir, pg) = common::fresh_database(backend).await?;
        let db = server::db::Db::connect(&url).await?;
        // The schema as sqm left it before migration 6: one complete file, one half sent.
        db.migrate_through(5).await?;
        let (done, half) = (content(300, 71), content(300, 72));
        let now = server::db::now_ms();
        for (hash, received, data, complete, by) in [
            (sha(&done), 300_i64, done.clone(), Some(now), "k.iyer"),
            (sha(&half), 100, half[..100].to_vec(), None, "s.khan"),
        ] {
            sqlx::query(
                "INSERT INTO blobs (sha256, size, received, data, complete_at, uploaded_by, created_at) \
                 VALUES ($1, 300, $2, $3, $4, $5, $6)",
            )
            .bind(hash)
            .bind(received)
            .bind(data)
            .bind(complete)
            .bind(by)
            .bind(now)
            .execute(db.pool())
            .await?;
        }
        db.close().await;
        let s = TestServer::start_at(&url, dir, pg, true, |_| {}).await?;
        let iyer = s.login("k.iyer").await?;
        let khan = s.login("s.khan").await?;
        let held = status(&s, &iyer, &sha(&done)).await?;
        ensure!(held["complete"] == true, "the one who completed it holds it: {held}");
        let resumed = status(&s, &khan, &sha(&half)).await?;
        ensure!(resumed["received"] == 100 && resumed["complete"] == false, "{resumed}");
        expect("the rest", part(&s, &khan, &half, 100, 299).await?, StatusCode::CREATED)?;
        ensure!(stored(&s, &sha(&done)).await?.is_some_and(|b| b.3 == done));
        s.stop().await;
        Ok(())
    }
}
