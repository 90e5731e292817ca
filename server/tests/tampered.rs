//! The tampered-change matrix (issue 19, item 1), on SQLite and PostgreSQL.
//!
//! Raw Automerge changes, made past the tablet's own checks (never through
//! `edit`) under each person's registered actor, on the documents as the
//! database holds them, and sent through the real server: every writable
//! place of an audit, an NC and a management review, by every role, an
//! outsider, a team member whose auditor role ended yesterday and one whose
//! role starts tomorrow. Each case waits for its own outcome: a rejection
//! naming the rule (and the refused change kept in quarantine under it), or
//! the change in the `changes` table with no refusal told. Then the special
//! cases: a wrong `by`, rewriting the header, its lead and its team,
//! creating what one may not create, late edits to a locked audit, unknown
//! fields and objects, a root that is not a map, an oversized batch, a wrong
//! document id, changes that cannot be applied and deleting extensions.
//!
//! The expected outcomes are written by hand from DESIGN §2 and the rules,
//! never computed from sync-core's permission functions.

mod common;

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use common::sync_help::{SETTLE, holds};
use common::{Backend, Tablet, TestServer};
use reqwest::{Method, StatusCode};
use serde_json::json;
use server::client::{Client, ClientError};
use sync_core::audit::{AuditHeader, FindingClass};
use sync_core::automerge::legacy::{ElementId, Key};
use sync_core::automerge::transaction::{Transactable, Transaction};
use sync_core::automerge::{
    ActorId, Automerge, Change, ChangeHash, ExpandedChange, ObjId, ObjType, ROOT, ReadDoc, Value,
    sync,
};
use sync_core::date::{Date, Timestamp};
use sync_core::edit::Edit;
use sync_core::engine::Notice;
use sync_core::envelope::{Body, Envelope};
use sync_core::ids::DocumentId;
use sync_core::nc::{Action, NcLink, Severity};

const LEAD: &str = "k.iyer";
const MEMBER: &str = "s.khan";
const OWNER: &str = "ac.div2";
const NODAL: &str = "a.rao";
/// A process owner of the unit (P04) with no part in these documents.
const OUTSIDER: &str = "ac.refunds";
const ADMIN: &str = "sqm.admin";
/// On the audit's team; his auditor role ended yesterday.
const ENDED: &str = "p.sharma";
/// On the audit's team; her auditor role starts tomorrow.
const NOT_YET: &str = "m.das";

/// The columns of the matrix.
const PEOPLE: [&str; 8] = [LEAD, MEMBER, OWNER, NODAL, OUTSIDER, ADMIN, ENDED, NOT_YET];

/// How long one case may take before the test gives up on it.
const WAIT: Duration = Duration::from_secs(60);

// The outcomes, as the table writes them.
const S: &str = "stored";
const NP: &str = "doc.not_permitted";
const WO: &str = "doc.write_once";
const AH: &str = "audit.header";
const AC: &str = "audit.content";
const MW: &str = "move.who";
const ND: &str = "nc.description";
const OF: &str = "nc.owner_fields";
const NV: &str = "nc.verification";
const NE: &str = "nc.extension";

/// Which document a case writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Audit,
    Nc,
    Review,
}

/// What a write knows: who writes, when, and a number unique to the case.
struct Ctx {
    who: String,
    now: String,
    today: Date,
    heads: Vec<ChangeHash>,
    n: usize,
}

impl Ctx {
    /// A date `days` after today, different for every case (Automerge
    /// makes no change for a write of the value a field already holds).
    fn day(&self, days: i32) -> Date {
        self.today
            .add_days(days + i32::try_from(self.n).unwrap_or(0))
    }
}

type Write = fn(&mut Transaction<'_>, &Ctx) -> Result<()>;

/// One writable place and what each person's write there comes to (the
/// columns of [`PEOPLE`]), by hand from DESIGN §2: the header is the lead's
/// (`audit.header`, also for its identity fields: who may not write the
/// header at all is refused that first), and its identity fields are
/// written once, even by the lead (`doc.write_once`), as are an NC's and a
/// review's link fields; answers, findings and notes the team's (`audit.content`); the NC's
/// description the team's (`nc.description`); correction, root cause and
/// actions the process owner's (`nc.owner_fields`); verification an
/// independent auditor's (`nc.verification`), and so are the files attached
/// as verification evidence, while implementation evidence is the process
/// owner's (`nc.owner_fields`); extensions a nodal
/// officer's (`nc.extension`); a review its unit's nodal officers'; moves as
/// the move table says (`move.who`); a document one may not read refused as
/// such (`doc.not_permitted`), whatever is written.
#[rustfmt::skip]
const GRID: &[(&str, Which, Write, [&str; 8])] = &[
    // place                              document       write                 lead member owner nodal outsider admin ended not-yet
    ("audit header/end",                  Which::Audit,  header_end,           [S,  AH, NP, AH, NP, NP, NP, NP]),
    ("audit header/lead",                 Which::Audit,  header_lead,          [WO, AH, NP, AH, NP, NP, NP, NP]),
    ("audit responses",                   Which::Audit,  response,             [S,  S,  NP, AC, NP, NP, NP, NP]),
    ("audit findings",                    Which::Audit,  finding,              [S,  S,  NP, AC, NP, NP, NP, NP]),
    ("audit notes",                       Which::Audit,  notes,                [S,  S,  NP, AC, NP, NP, NP, NP]),
    ("audit events: submit_for_review",   Which::Audit,  submit_for_review,    [S,  MW, NP, MW, NP, NP, NP, NP]),
    ("nc description",                    Which::Nc,     description,          [S,  S,  ND, ND, NP, NP, NP, NP]),
    ("nc correction",                     Which::Nc,     correction,           [OF, OF, S,  OF, NP, NP, NP, NP]),
    ("nc root_cause",                     Which::Nc,     root_cause,           [OF, OF, S,  OF, NP, NP, NP, NP]),
    ("nc actions",                        Which::Nc,     nc_action,            [OF, OF, S,  OF, NP, NP, NP, NP]),
    ("nc verification",                   Which::Nc,     verification,         [S,  S,  NV, NV, NP, NP, NP, NP]),
    ("nc extensions",                     Which::Nc,     extension,            [NE, NE, NE, S,  NP, NP, NP, NP]),
    ("nc implementation_evidence",        Which::Nc,     implementation_file,  [OF, OF, S,  OF, NP, NP, NP, NP]),
    ("nc verification_evidence",          Which::Nc,     verification_file,    [S,  S,  NV, NV, NP, NP, NP, NP]),
    ("nc events: submit_response",        Which::Nc,     submit_response,      [MW, MW, S,  MW, NP, NP, NP, NP]),
    ("nc link: process",                  Which::Nc,     nc_process,           [WO, WO, WO, WO, NP, NP, NP, NP]),
    ("review title",                      Which::Review, review_title,         [NP, NP, NP, S,  NP, NP, NP, NP]),
    ("review held_on",                    Which::Review, review_held_on,       [NP, NP, NP, S,  NP, NP, NP, NP]),
    ("review inputs",                     Which::Review, review_inputs,        [NP, NP, NP, S,  NP, NP, NP, NP]),
    ("review minutes",                    Which::Review, review_minutes,       [NP, NP, NP, S,  NP, NP, NP, NP]),
    ("review decisions",                  Which::Review, review_decision,      [NP, NP, NP, S,  NP, NP, NP, NP]),
    ("review actions",                    Which::Review, review_action,        [NP, NP, NP, S,  NP, NP, NP, NP]),
    ("review unit",                       Which::Review, review_unit,          [NP, NP, NP, WO, NP, NP, NP, NP]),
];

fn child(tx: &Transaction<'_>, parent: &ObjId, key: &str) -> Result<ObjId> {
    match tx.get(parent, key)? {
        Some((Value::Object(_), id)) => Ok(id),
        _ => bail!("the document has no object '{key}'"),
    }
}

fn header_end(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    let h = child(tx, &ROOT, "header")?;
    tx.put(&h, "end", c.day(3).to_string())?;
    Ok(())
}

/// Makes the writer the lead (the lead hands the lead to the member).
fn header_lead(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    let h = child(tx, &ROOT, "header")?;
    let lead = if c.who == LEAD {
        MEMBER
    } else {
        c.who.as_str()
    };
    tx.put(&h, "lead", lead)?;
    Ok(())
}

fn response_by(tx: &mut Transaction<'_>, c: &Ctx, by: &str) -> Result<ObjId> {
    let r = child(tx, &ROOT, "responses")?;
    let m = tx.put_object(&r, format!("mr.held_{}", c.n), ObjType::Map)?;
    tx.put(&m, "type", "cpna")?;
    tx.put(&m, "value", "conform")?;
    tx.put(&m, "note", "Minutes of the last review seen.")?;
    tx.put_object(&m, "evidence", ObjType::List)?;
    tx.put(&m, "by", by)?;
    tx.put(&m, "at", c.now.as_str())?;
    Ok(m)
}

fn response(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    response_by(tx, c, &c.who).map(|_| ())
}

fn finding(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    let f = child(tx, &ROOT, "findings")?;
    let m = tx.put_object(&f, format!("f-{}", c.n), ObjType::Map)?;
    tx.put(&m, "class", FindingClass::Observation.to_string())?;
    tx.put(&m, "clause", "3.4")?;
    tx.put(&m, "text", "Review minutes filed a week late.")?;
    tx.put_object(&m, "evidence", ObjType::List)?;
    tx.put(&m, "by", c.who.as_str())?;
    tx.put(&m, "at", c.now.as_str())?;
    Ok(())
}

fn notes(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(ROOT, "notes", format!("Opening meeting held ({}).", c.n))?;
    Ok(())
}

/// Appends a lifecycle event `mv` from `from`, recorded as made by `by`.
fn event(tx: &mut Transaction<'_>, c: &Ctx, mv: &str, from: &str, by: &str) -> Result<ObjId> {
    let events = child(tx, &ROOT, "events")?;
    let at = tx.length(&events);
    let e = tx.insert_object(&events, at, ObjType::Map)?;
    tx.put(&e, "move", mv)?;
    tx.put(&e, "from", from)?;
    tx.put(&e, "by", by)?;
    tx.put(&e, "at", c.now.as_str())?;
    tx.put(&e, "note", "")?;
    Ok(e)
}

fn submit_for_review(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    let e = event(tx, c, "submit_for_review", "in_progress", &c.who)?;
    let heads = tx.put_object(&e, "heads", ObjType::List)?;
    for (i, h) in c.heads.iter().enumerate() {
        tx.insert(&heads, i, h.to_string())?;
    }
    Ok(())
}

fn description(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(
        ROOT,
        "description",
        format!("Amendment approved in 19 days against 15 ({}).", c.n),
    )?;
    Ok(())
}

fn correction(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(
        ROOT,
        "correction",
        format!("Pending amendments cleared ({}).", c.n),
    )?;
    Ok(())
}

fn root_cause(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(
        ROOT,
        "root_cause",
        format!("No ageing report at the desk ({}).", c.n),
    )?;
    Ok(())
}

fn action_in(tx: &mut Transaction<'_>, c: &Ctx, id: String) -> Result<()> {
    let a = child(tx, &ROOT, "actions")?;
    let m = tx.put_object(&a, id, ObjType::Map)?;
    tx.put(&m, "text", "Daily ageing report to the AC.")?;
    tx.put(&m, "owner", "Supdt Div-II")?;
    tx.put(&m, "target", c.today.add_days(30).to_string())?;
    Ok(())
}

fn nc_action(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    action_in(tx, c, format!("a-{}", c.n))
}

fn verification(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    let v = child(tx, &ROOT, "verification")?;
    tx.put(
        &v,
        "note",
        format!("Ageing report seen for twenty days ({}).", c.n),
    )?;
    tx.put(&v, "by", c.who.as_str())?;
    tx.put(&v, "on", c.today.to_string())?;
    Ok(())
}

fn extension_by(tx: &mut Transaction<'_>, c: &Ctx, by: &str) -> Result<()> {
    let list = child(tx, &ROOT, "extensions")?;
    let at = tx.length(&list);
    let e = tx.insert_object(&list, at, ObjType::Map)?;
    tx.put(&e, "of", "response")?;
    tx.put(&e, "due", c.today.add_days(14).to_string())?;
    tx.put(&e, "justification", "Division short of staff this month.")?;
    tx.put(&e, "by", by)?;
    tx.put(&e, "at", c.now.as_str())?;
    Ok(())
}

fn extension(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    extension_by(tx, c, &c.who)
}

/// Appends a file to one of the NC's evidence lists, attached by the writer.
fn file_in(tx: &mut Transaction<'_>, c: &Ctx, list: &str) -> Result<()> {
    let list = child(tx, &ROOT, list)?;
    let at = tx.length(&list);
    let e = tx.insert_object(&list, at, ObjType::Map)?;
    tx.put(&e, "sha256", format!("{:064x}", c.n))?;
    tx.put(&e, "name", format!("scan-{}.pdf", c.n))?;
    tx.put(&e, "mime", "application/pdf")?;
    tx.put(&e, "size", 48_213_u64)?;
    tx.put(&e, "by", c.who.as_str())?;
    tx.put(&e, "at", c.now.as_str())?;
    Ok(())
}

fn implementation_file(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    file_in(tx, c, "implementation_evidence")
}

fn verification_file(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    file_in(tx, c, "verification_evidence")
}

fn submit_response(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    event(tx, c, "submit_response", "open", &c.who).map(|_| ())
}

fn nc_process(tx: &mut Transaction<'_>, _: &Ctx) -> Result<()> {
    tx.put(ROOT, "process", "P04")?;
    Ok(())
}

fn review_title(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(
        ROOT,
        "title",
        format!("MR-1: management review 2025-26 ({})", c.n),
    )?;
    Ok(())
}

fn review_held_on(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(ROOT, "held_on", c.day(-30).to_string())?;
    Ok(())
}

fn review_inputs(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(ROOT, "inputs", format!("NC status: 2 open ({}).", c.n))?;
    Ok(())
}

fn review_minutes(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    tx.put(ROOT, "minutes", format!("Resources discussed ({}).", c.n))?;
    Ok(())
}

fn review_decision(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    let d = child(tx, &ROOT, "decisions")?;
    let at = tx.length(&d);
    tx.insert(
        &d,
        at,
        format!("Train two more facilitation staff ({}).", c.n),
    )?;
    Ok(())
}

fn review_action(tx: &mut Transaction<'_>, c: &Ctx) -> Result<()> {
    action_in(tx, c, format!("r-{}", c.n))
}

fn review_unit(tx: &mut Transaction<'_>, _: &Ctx) -> Result<()> {
    tx.put(ROOT, "unit", "DEMO-I-DIV2")?;
    Ok(())
}

/// A person: a registered tablet, its actor, and its live connection.
struct Person {
    user: &'static str,
    tablet: Tablet,
    actor: ActorId,
    client: Option<Client>,
}

impl Person {
    fn client(&mut self) -> Result<&mut Client> {
        self.client.as_mut().context("not connected")
    }
}

/// What became of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    /// In the `changes` table, no refusal told.
    Stored,
    /// Refused with this rule, told to the tablet and kept in quarantine under it.
    Refused(String),
    /// The server closed the connection with this code; nothing stored or kept.
    Closed(u16),
}

impl std::fmt::Display for Got {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Got::Stored => f.write_str(S),
            Got::Refused(r) => f.write_str(r),
            Got::Closed(c) => write!(f, "closed {c}"),
        }
    }
}

/// A sync message carrying exactly these changes.
fn carrying(doc: DocumentId, changes: Vec<Vec<u8>>) -> Result<Vec<u8>> {
    let msg = sync::Message {
        heads: Vec::new(),
        need: Vec::new(),
        have: Vec::new(),
        changes: changes.into(),
        flags: None,
        version: sync::MessageVersion::V1,
    };
    Ok(Envelope {
        doc,
        body: Body::Sync(msg.encode()),
    }
    .encode()?)
}

fn now_iso() -> String {
    Timestamp(server::db::now_ms()).to_string()
}

async fn stored_doc(s: &TestServer, doc: &DocumentId) -> Result<Automerge> {
    server::db::documents::load(&s.db, doc)
        .await?
        .with_context(|| format!("{doc} is not stored"))
}

/// One change under `actor` on the document as the database holds it
/// (`None`: a new document), writing what `write` writes.
async fn raw_change(
    s: &TestServer,
    doc: Option<&DocumentId>,
    actor: &ActorId,
    write: impl FnOnce(&mut Transaction<'_>, &[ChangeHash]) -> Result<()>,
) -> Result<Change> {
    let stored = match doc {
        Some(d) => stored_doc(s, d).await?,
        None => Automerge::new(),
    };
    let heads = stored.get_heads();
    let mut fork = stored.fork().with_actor(actor.clone());
    fork.transact(|tx| write(tx, &heads)).map_err(|f| f.error)?;
    let mut new = fork.get_changes(&heads);
    ensure!(new.len() == 1, "one change, not {}", new.len());
    Ok(new.remove(0))
}

fn told(c: &Client, hash: &ChangeHash) -> Option<String> {
    c.rejections.iter().find_map(|n| match n {
        Notice::Rejected { rule, changes, .. } if changes.contains(hash) => Some(rule.clone()),
        _ => None,
    })
}

async fn in_changes(s: &TestServer, doc: &DocumentId, hash: &ChangeHash) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM changes WHERE doc_id = $1 AND hash = $2")
        .bind(doc.to_string())
        .bind(hash.to_string())
        .fetch_one(s.db.pool())
        .await?;
    Ok(n > 0)
}

/// The rules the exact bytes of these changes are kept in quarantine under.
async fn kept_as(s: &TestServer, doc: &DocumentId, changes: &[Change]) -> Result<Vec<String>> {
    let bytes: Vec<u8> = changes
        .iter()
        .flat_map(|c| c.raw_bytes().to_vec())
        .collect();
    Ok(
        sqlx::query_scalar("SELECT rule FROM quarantine WHERE doc_id = $1 AND bytes = $2")
            .bind(doc.to_string())
            .bind(bytes)
            .fetch_all(s.db.pool())
            .await?,
    )
}

/// Sends changes from a person for a document and waits for what becomes of
/// them: told refused (and kept under that rule) or stored (and not told).
async fn send(s: &TestServer, p: &mut Person, doc: DocumentId, changes: &[Change]) -> Result<Got> {
    let first = changes.first().context("no change")?.hash();
    let bytes = changes.iter().map(|c| c.raw_bytes().to_vec()).collect();
    p.client()?.send_raw(carrying(doc, bytes)?).await?;
    let deadline = Instant::now() + WAIT;
    loop {
        let client = p.client()?;
        match client
            .run_until(Duration::from_millis(20), |c| told(c, &first).is_some())
            .await
        {
            Ok(_) => {}
            Err(ClientError::Closed { code, .. }) => {
                ensure!(!in_changes(s, &doc, &first).await?, "stored, yet closed");
                ensure!(
                    kept_as(s, &doc, changes).await?.is_empty(),
                    "kept, yet closed"
                );
                return Ok(Got::Closed(code));
            }
            Err(e) => return Err(e.into()),
        }
        if let Some(rule) = told(client, &first) {
            ensure!(!in_changes(s, &doc, &first).await?, "{rule}, yet stored");
            let kept = kept_as(s, &doc, changes).await?;
            ensure!(kept == [rule.clone()], "told {rule}, kept as {kept:?}");
            return Ok(Got::Refused(rule));
        }
        if in_changes(s, &doc, &first).await? {
            ensure!(told(p.client()?, &first).is_none(), "stored, yet told");
            return Ok(Got::Stored);
        }
        if Instant::now() > deadline {
            bail!("no outcome for {first} on {doc} within {WAIT:?}");
        }
    }
}

/// Lets every connection read what the server sent it, so that no socket
/// backs up while the matrix talks to one person at a time.
async fn drain(people: &mut [Person]) -> Result<()> {
    for p in people.iter_mut() {
        if let Some(c) = p.client.as_mut() {
            c.run_until(Duration::from_millis(5), |_| false).await?;
        }
    }
    Ok(())
}

/// The documents the matrix writes to.
struct Docs {
    audit: DocumentId,
    nc: DocumentId,
    review: DocumentId,
    /// Planned (lead k.iyer, member s.khan), not created.
    planned: DocumentId,
    planned_header: AuditHeader,
}

impl Docs {
    fn of(&self, w: Which) -> DocumentId {
        match w {
            Which::Audit => self.audit,
            Which::Nc => self.nc,
            Which::Review => self.review,
        }
    }
}

/// The checklist version the matrix's audits pin: one optional item, so
/// that a lead's move to review is judged by who may make it, not by the
/// answers (`templates.rs` tests the checklist's own rules).
const TEMPLATE: i64 = 90;

/// Publishes version [`TEMPLATE`].
async fn publish_template(s: &TestServer, admin: &str) -> Result<()> {
    let file = json!({
        "version": TEMPLATE, "manual_issue": "SQM-03", "published_on": "2026-01-01",
        "items": [{"key": "gen.remarks", "clause": "", "question": "General remarks",
                   "type": "text", "required": false}]
    });
    let res = s
        .client
        .post(format!("{}/api/v1/admin/templates", s.base))
        .bearer_auth(admin)
        .json(&file)
        .send()
        .await?;
    ensure!(res.status() == StatusCode::CREATED, "{}", res.text().await?);
    Ok(())
}

/// Makes and approves Demo-I's programme for the year `day` falls in
/// (covering P03 and 3.4), unless the demo's covers it.
async fn approved_programme(s: &TestServer, rao: &str, day: Date) -> Result<()> {
    let fy = server::http::admin::audits::financial_year(day);
    if fy == "2025-26" {
        return Ok(());
    }
    let path = "/api/v1/admin/units/DEMO-I/programmes";
    let (status, made) = s
        .post(
            path,
            rao,
            json!({"fy": fy, "cycles": 1, "scope": ["P03", "3.4"]}),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "{made}");
    let approve = format!("{path}/{}/approve", made["id"].as_str().context("id")?);
    let (status, body) = s.post(&approve, rao, json!({})).await?;
    ensure!(status == StatusCode::OK, "{body}");
    Ok(())
}

/// Plans an audit of Demo-I from tomorrow (days are India's): k.iyer leads.
async fn plan(
    s: &TestServer,
    token: &str,
    number: &str,
    members: &[&str],
) -> Result<(DocumentId, AuditHeader)> {
    let from = server::access::today().add_days(1);
    let to = from.add_days(1);
    let (status, audit) = s
        .post(
            "/api/v1/admin/units/DEMO-I/audits",
            token,
            json!({
                "number": number, "scope": ["P03", "3.4"], "planned_from": from.to_string(),
                "planned_to": to.to_string(), "template_version": TEMPLATE, "lead": LEAD, "members": members
            }),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "{audit}");
    let id: DocumentId = audit["id"].as_str().context("id")?.parse()?;
    let mut team = vec![LEAD.parse()?];
    for m in members {
        team.push(m.parse()?);
    }
    let header = AuditHeader {
        unit: "DEMO-I".parse()?,
        number: number.into(),
        scope: vec!["P03".into(), "3.4".into()],
        template_version: TEMPLATE as u64,
        lead: LEAD.parse()?,
        team,
        start: from,
        end: Some(to),
    };
    Ok((id, header))
}

/// The people, with their rights set up as the matrix needs, and the documents.
async fn set_up(s: &TestServer) -> Result<(Vec<Person>, Docs)> {
    let today = server::access::today();
    let admin = s.login(ADMIN).await?;
    let rao = s.login(NODAL).await?;
    // M. Das (a process owner) becomes an auditor tomorrow.
    let (status, body) = s
        .post(
            "/api/v1/admin/units/DEMO-I/roles",
            &admin,
            json!({"username": NOT_YET, "role": "auditor", "valid_from": today.add_days(1).to_string(),
                   "office_order": "OO 31/2026-SQM"}),
        )
        .await?;
    ensure!(status == StatusCode::CREATED, "{body}");
    publish_template(s, &admin).await?;
    approved_programme(s, &rao, today.add_days(1)).await?;
    let (audit, header) = plan(s, &rao, "IA/DEMO-I/2026-27/901", &[MEMBER, ENDED, NOT_YET]).await?;
    let (planned, planned_header) = plan(s, &rao, "IA/DEMO-I/2026-27/902", &[MEMBER]).await?;
    // P. Sharma's auditor role ends: yesterday was its last day.
    let (status, body) = s
        .call(
            Method::DELETE,
            &format!("/api/v1/admin/units/DEMO-I/roles/demo-{ENDED}-auditor"),
            Some(&admin),
            None,
        )
        .await?;
    ensure!(status == StatusCode::NO_CONTENT, "{body}");
    let mut people = Vec::new();
    for user in PEOPLE {
        let mut tablet = s.tablet(user).await?;
        let actor = tablet
            .engine
            .as_ref()
            .and_then(|e| e.actor())
            .cloned()
            .context("actor")?;
        let client = Some(s.connect(&mut tablet).await?);
        people.push(Person {
            user,
            tablet,
            actor,
            client,
        });
    }
    let ended = &people[6].tablet.author;
    ensure!(
        ended
            .grants
            .iter()
            .any(|g| g.until == Some(today.add_days(-1))),
        "{ENDED}'s role did not end: {:?}",
        ended.grants
    );
    // The lead makes the audit, starts it, records a finding and raises an NC on P03.
    let nc = DocumentId::new_v7(server::db::now_ms(), [0x19; 10]);
    let lead = &mut people[0];
    let author = lead.tablet.author.clone();
    let c = lead.client()?;
    let finding: sync_core::ids::ItemId = "f-01".parse()?;
    for (doc, edit) in [
        (audit, Edit::CreateAudit(header)),
        (
            audit,
            Edit::Move {
                mv: "start".into(),
                note: String::new(),
            },
        ),
        (
            audit,
            Edit::PutFinding {
                id: finding.clone(),
                class: FindingClass::Minor,
                clause: "3.2.1.3".parse()?,
                process: Some("P03".parse()?),
                text: "Amendment approved in 19 days against 15.".into(),
                evidence: Vec::new(),
            },
        ),
        (
            nc,
            Edit::CreateNc {
                link: NcLink {
                    unit: "DEMO-I".parse()?,
                    audit,
                    finding,
                    process: Some("P03".parse()?),
                    clause: "3.2.1.3".parse()?,
                    class: Severity::Minor,
                    raised_on: today,
                },
                description: "Amendment approved in 19 days against 15.".into(),
                provisional: String::new(),
            },
        ),
        (
            nc,
            Edit::Move {
                mv: "raise".into(),
                note: String::new(),
            },
        ),
    ] {
        c.edit(doc, &edit, &author).await?;
    }
    ensure!(c.settle(SETTLE).await?, "the lead did not settle");
    // The process owner answers it.
    let owner = &mut people[2];
    let author = owner.tablet.author.clone();
    let c = owner.client()?;
    holds(s, c, &[nc]).await?;
    for edit in [
        Edit::SetCorrection("Pending amendments cleared.".into()),
        Edit::SetRootCause("No ageing report at the desk.".into()),
        Edit::PutAction {
            id: "a-1".parse()?,
            action: Action {
                text: "Daily ageing report to the AC.".into(),
                owner: "Supdt Div-II".into(),
                target: today.add_days(30),
                done_on: None,
            },
        },
    ] {
        c.edit(nc, &edit, &author).await?;
    }
    ensure!(c.settle(SETTLE).await?, "the owner did not settle");
    // The demo's management review (MR-1, A. Rao's).
    let review: String =
        sqlx::query_scalar("SELECT id FROM documents WHERE kind = 'review' ORDER BY id LIMIT 1")
            .fetch_one(s.db.pool())
            .await?;
    let docs = Docs {
        audit,
        nc,
        review: review.parse()?,
        planned,
        planned_header,
    };
    Ok((people, docs))
}

fn person<'a>(people: &'a mut [Person], user: &str) -> Result<&'a mut Person> {
    people
        .iter_mut()
        .find(|p| p.user == user)
        .with_context(|| format!("no {user}"))
}

/// A case's line of the summary: (place, person, expected, got).
type Line = (String, &'static str, String, Got);

/// Writes a new audit document with this header under `id`.
fn new_audit(tx: &mut Transaction<'_>, id: DocumentId, h: &AuditHeader) -> Result<()> {
    tx.put(ROOT, "schema", sync_core::DocKind::Audit.schema())?;
    tx.put(ROOT, "v", sync_core::schema::SCHEMA_VERSION)?;
    tx.put(ROOT, "id", id.to_string())?;
    let m = tx.put_object(ROOT, "header", ObjType::Map)?;
    tx.put(&m, "unit", h.unit.to_string())?;
    tx.put(&m, "number", h.number.as_str())?;
    let scope = tx.put_object(&m, "scope", ObjType::List)?;
    for (i, x) in h.scope.iter().enumerate() {
        tx.insert(&scope, i, x.as_str())?;
    }
    tx.put(&m, "template", h.template_version)?;
    tx.put(&m, "lead", h.lead.to_string())?;
    let team = tx.put_object(&m, "team", ObjType::List)?;
    for (i, x) in h.team.iter().enumerate() {
        tx.insert(&team, i, x.to_string())?;
    }
    tx.put(&m, "start", h.start.to_string())?;
    if let Some(end) = h.end {
        tx.put(&m, "end", end.to_string())?;
    }
    tx.put_object(ROOT, "responses", ObjType::Map)?;
    tx.put_object(ROOT, "findings", ObjType::Map)?;
    tx.put(ROOT, "notes", "")?;
    tx.put_object(ROOT, "events", ObjType::List)?;
    Ok(())
}

/// Writes a new NC document on the matrix's audit and finding under `id`.
fn new_nc(tx: &mut Transaction<'_>, id: DocumentId, audit: DocumentId, today: Date) -> Result<()> {
    tx.put(ROOT, "schema", sync_core::DocKind::Nc.schema())?;
    tx.put(ROOT, "v", sync_core::schema::SCHEMA_VERSION)?;
    tx.put(ROOT, "id", id.to_string())?;
    tx.put(ROOT, "unit", "DEMO-I")?;
    tx.put(ROOT, "audit", audit.to_string())?;
    tx.put(ROOT, "finding", "f-01")?;
    tx.put(ROOT, "process", "P03")?;
    tx.put(ROOT, "clause", "3.2.1.3")?;
    tx.put(ROOT, "class", "minor")?;
    tx.put(ROOT, "raised_on", today.to_string())?;
    tx.put(ROOT, "description", "A second NC on the finding.")?;
    tx.put(ROOT, "correction", "")?;
    tx.put(ROOT, "root_cause", "")?;
    tx.put_object(ROOT, "actions", ObjType::Map)?;
    tx.put_object(ROOT, "extensions", ObjType::List)?;
    tx.put_object(ROOT, "verification", ObjType::Map)?;
    tx.put_object(ROOT, "implementation_evidence", ObjType::List)?;
    tx.put_object(ROOT, "verification_evidence", ObjType::List)?;
    tx.put_object(ROOT, "events", ObjType::List)?;
    Ok(())
}

/// Writes a new management review of Demo-I under `id`.
fn new_review(tx: &mut Transaction<'_>, id: DocumentId) -> Result<()> {
    tx.put(ROOT, "schema", sync_core::DocKind::Review.schema())?;
    tx.put(ROOT, "v", sync_core::schema::SCHEMA_VERSION)?;
    tx.put(ROOT, "id", id.to_string())?;
    tx.put(ROOT, "unit", "DEMO-I")?;
    tx.put(ROOT, "title", "MR-2")?;
    tx.put(ROOT, "inputs", "")?;
    tx.put_object(ROOT, "decisions", ObjType::List)?;
    tx.put_object(ROOT, "actions", ObjType::Map)?;
    tx.put(ROOT, "minutes", "")?;
    Ok(())
}

fn new_id(tag: u8) -> DocumentId {
    DocumentId::new_v7(server::db::now_ms(), [tag; 10])
}

/// Rewrites a change's first operation (a tampered encoding no Automerge
/// API writes).
fn tampered(change: &Change, f: impl FnOnce(&mut ExpandedChange)) -> Change {
    let mut e = change.decode();
    f(&mut e);
    e.hash = None;
    Change::from(e)
}

on_both! {
    async fn every_raw_change_is_stored_or_refused_by_the_exact_rule_the_design_gives(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let (mut people, docs) = set_up(&s).await?;
        let today = server::access::today();
        let started = Instant::now();
        let mut lines: Vec<Line> = Vec::new();
        let mut n = 100;
        for (place, which, write, expected) in GRID {
            let doc = docs.of(*which);
            for (i, user) in PEOPLE.iter().enumerate() {
                n += 1;
                let p = person(&mut people, user)?;
                let ctx_now = now_iso();
                let change = raw_change(&s, Some(&doc), &p.actor, |tx, heads| {
                    let c = Ctx { who: (*user).into(), now: ctx_now, today, heads: heads.to_vec(), n };
                    write(tx, &c)
                })
                .await?;
                let got = send(&s, p, doc, &[change]).await?;
                lines.push(((*place).into(), user, expected[i].into(), got));
            }
            drain(&mut people).await?;
        }
        let grid_took = started.elapsed();

        // The specials: (what, who, expected, got).
        let mut special = |what: &str, who: &'static str, expected: &str, got: Got| {
            lines.push((what.into(), who, expected.into(), got));
        };

        // A wrong `by`: an answer, an extension and a move recorded as someone else's.
        let p = person(&mut people, MEMBER)?;
        let (now, k) = (now_iso(), n + 1);
        let c = raw_change(&s, Some(&docs.audit), &p.actor, |tx, heads| {
            let ctx = Ctx { who: MEMBER.into(), now, today, heads: heads.to_vec(), n: k };
            response_by(tx, &ctx, LEAD).map(|_| ())
        }).await?;
        special("answer with by = k.iyer", MEMBER, "entry.by", send(&s, p, docs.audit, &[c]).await?);
        let p = person(&mut people, NODAL)?;
        let now = now_iso();
        let c = raw_change(&s, Some(&docs.nc), &p.actor, |tx, heads| {
            let ctx = Ctx { who: NODAL.into(), now, today, heads: heads.to_vec(), n: k };
            extension_by(tx, &ctx, LEAD)
        }).await?;
        special("extension with by = k.iyer", NODAL, "entry.by", send(&s, p, docs.nc, &[c]).await?);
        let p = person(&mut people, MEMBER)?;
        let now = now_iso();
        let c = raw_change(&s, Some(&docs.nc), &p.actor, |tx, heads| {
            let ctx = Ctx { who: MEMBER.into(), now, today, heads: heads.to_vec(), n: k };
            event(tx, &ctx, "accept_plan", "response_submitted", LEAD).map(|_| ())
        }).await?;
        // The entry's `by` check (schema) answers before the move's own (move.by).
        special("move accept_plan with by = k.iyer", MEMBER, "move.by", send(&s, p, docs.nc, &[c]).await?);

        // Rewriting the header: whole, its identity, and its team.
        let p = person(&mut people, LEAD)?;
        let h = docs.planned_header.clone();
        let c = raw_change(&s, Some(&docs.audit), &p.actor, |tx, _| {
            new_audit_header_only(tx, &h)
        }).await?;
        special("header replaced whole", LEAD, WO, send(&s, p, docs.audit, &[c]).await?);
        for (key, value) in [("number", "IA/DEMO-I/2026-27/999"), ("unit", "DEMO-I-DIV2")] {
            let c = raw_change(&s, Some(&docs.audit), &p.actor, |tx, _| {
                let h = child(tx, &ROOT, "header")?;
                tx.put(&h, key, value)?;
                Ok(())
            }).await?;
            special(&format!("header/{key} rewritten"), LEAD, WO, send(&s, p, docs.audit, &[c]).await?);
        }
        let team_with = |who: &'static str| move |tx: &mut Transaction<'_>, _: &[ChangeHash]| -> Result<()> {
            let h = child(tx, &ROOT, "header")?;
            let team = tx.put_object(&h, "team", ObjType::List)?;
            for (i, u) in [LEAD, MEMBER, who].iter().enumerate() {
                tx.insert(&team, i, *u)?;
            }
            Ok(())
        };
        let p = person(&mut people, MEMBER)?;
        let c = raw_change(&s, Some(&docs.audit), &p.actor, team_with(MEMBER)).await?;
        special("header/team rewritten", MEMBER, AH, send(&s, p, docs.audit, &[c]).await?);
        // The lead may rewrite the team the header shows; it gives nobody rights.
        let p = person(&mut people, LEAD)?;
        let c = raw_change(&s, Some(&docs.audit), &p.actor, team_with(OUTSIDER)).await?;
        special("header/team names ac.refunds", LEAD, S, send(&s, p, docs.audit, &[c]).await?);
        let p = person(&mut people, OUTSIDER)?;
        let now = now_iso();
        let c = raw_change(&s, Some(&docs.audit), &p.actor, |tx, heads| {
            let ctx = Ctx { who: OUTSIDER.into(), now, today, heads: heads.to_vec(), n: k };
            response(tx, &ctx)
        }).await?;
        special("answer once named in header/team", OUTSIDER, NP, send(&s, p, docs.audit, &[c]).await?);

        // Creating documents one may not create (and one that one may).
        let h = docs.planned_header.clone();
        let planned = docs.planned;
        let p = person(&mut people, MEMBER)?;
        let c = raw_change(&s, None, &p.actor, |tx, _| new_audit(tx, planned, &h)).await?;
        special("create the planned audit (not its lead)", MEMBER, "doc.create", send(&s, p, planned, &[c]).await?);
        for who in [OWNER, OUTSIDER, ADMIN, ENDED, NOT_YET] {
            let id = new_id(0x20);
            let p = person(&mut people, who)?;
            let c = raw_change(&s, None, &p.actor, |tx, _| new_nc(tx, id, docs.audit, today)).await?;
            special("create an NC on the audit", who, "doc.create", send(&s, p, id, &[c]).await?);
        }
        let id = new_id(0x21);
        let p = person(&mut people, MEMBER)?;
        let c = raw_change(&s, None, &p.actor, |tx, _| new_nc(tx, id, docs.audit, today)).await?;
        special("create an NC on the audit", MEMBER, S, send(&s, p, id, &[c]).await?);
        for who in [LEAD, MEMBER, OWNER, OUTSIDER] {
            let id = new_id(0x22);
            let p = person(&mut people, who)?;
            let c = raw_change(&s, None, &p.actor, |tx, _| new_review(tx, id)).await?;
            special("create a review of DEMO-I", who, "doc.create", send(&s, p, id, &[c]).await?);
        }

        // A wrong document id: the lead's new planned audit, sent for another id.
        let h = docs.planned_header.clone();
        let p = person(&mut people, LEAD)?;
        let c = raw_change(&s, None, &p.actor, |tx, _| new_audit(tx, planned, &h)).await?;
        special("planned audit sent under another id", LEAD, "doc.id", send(&s, p, new_id(0x23), &[c]).await?);

        // The audit is locked (submitted for review by the lead above): a
        // team member's answer is stored, as a late edit for the lead.
        let view = sync_core::audit::AuditView::read(&stored_doc(&s, &docs.audit).await?)?;
        ensure!(view.state.is_locked(), "the audit is not locked: {}", view.state);
        let p = person(&mut people, MEMBER)?;
        let (now, late) = (now_iso(), n + 2);
        let c = raw_change(&s, Some(&docs.audit), &p.actor, |tx, heads| {
            let ctx = Ctx { who: MEMBER.into(), now, today, heads: heads.to_vec(), n: late };
            response(tx, &ctx)
        }).await?;
        special("answer to the locked audit", MEMBER, S, send(&s, p, docs.audit, &[c]).await?);
        let view = sync_core::audit::AuditView::read(&stored_doc(&s, &docs.audit).await?)?;
        let key: sync_core::ids::ResponseKey = format!("mr.held_{late}").parse()?;
        ensure!(
            view.late_edits.iter().any(|e| matches!(e, sync_core::audit::LateEdit::Response { key: k, late: Some(_), .. } if *k == key)),
            "the answer is not a late edit: {:?}", view.late_edits
        );
        ensure!(!view.content.responses.contains_key(&key), "a late edit in force");

        // Unknown fields: at the root (and inside an entry, where the format check answers).
        let p = person(&mut people, MEMBER)?;
        let c = raw_change(&s, Some(&docs.audit), &p.actor, |tx, _| {
            tx.put(ROOT, "colour", "green")?;
            Ok(())
        }).await?;
        special("audit root field 'colour'", MEMBER, "schema.unknown_field", send(&s, p, docs.audit, &[c]).await?);
        let c = raw_change(&s, Some(&docs.nc), &p.actor, |tx, _| {
            tx.put_object(ROOT, "attachments", ObjType::Map)?;
            Ok(())
        }).await?;
        special("nc root object 'attachments'", MEMBER, "schema.unknown_field", send(&s, p, docs.nc, &[c]).await?);
        let now = now_iso();
        let c = raw_change(&s, Some(&docs.audit), &p.actor, |tx, heads| {
            let ctx = Ctx { who: MEMBER.into(), now, today, heads: heads.to_vec(), n: n + 3 };
            let m = response_by(tx, &ctx, MEMBER)?;
            tx.put(&m, "colour", "green")?;
            Ok(())
        }).await?;
        special("answer with field 'colour'", MEMBER, "schema", send(&s, p, docs.audit, &[c]).await?);

        // Deleting an extension (the nodal officer's of the matrix) breaks the
        // append-only rule of lists (events.append_only); deleting the whole
        // list, the extensions' own (nc.extension.append_only).
        let p = person(&mut people, NODAL)?;
        let c = raw_change(&s, Some(&docs.nc), &p.actor, |tx, _| {
            let list = child(tx, &ROOT, "extensions")?;
            tx.delete(&list, 0)?;
            Ok(())
        }).await?;
        special("extension deleted", NODAL, "events.append_only", send(&s, p, docs.nc, &[c]).await?);
        let c = raw_change(&s, Some(&docs.nc), &p.actor, |tx, _| {
            tx.delete(ROOT, "extensions")?;
            Ok(())
        }).await?;
        special("extensions list deleted", NODAL, "nc.extension.append_only", send(&s, p, docs.nc, &[c]).await?);

        // A change that cannot be applied: the lead's, with the sequence
        // number of one the audit already has from that actor.
        let p = person(&mut people, LEAD)?;
        let stored = stored_doc(&s, &docs.audit).await?;
        let last = stored
            .get_changes(&[])
            .into_iter()
            .filter(|c| c.actor_id() == &p.actor)
            .max_by_key(Change::seq)
            .context("the lead's changes")?;
        let mut fork = stored.fork_at(last.deps())?.with_actor(p.actor.clone());
        let before = fork.get_heads();
        fork.transact(|tx| tx.put(ROOT, "notes", "A second change numbered as the last."))
            .map_err(|f| f.error)?;
        let c = fork.get_changes(&before).remove(0);
        ensure!(c.seq() == last.seq(), "the same sequence number");
        special("change numbered as a stored one", LEAD, "change.malformed", send(&s, p, docs.audit, &[c]).await?);

        // More changes in one message than may be judged at once: kept aside
        // and told (in rejections of at most 4,096 changes each).
        let p = person(&mut people, MEMBER)?;
        let stored = stored_doc(&s, &docs.audit).await?;
        let mut fork = stored.fork().with_actor(p.actor.clone());
        let before = fork.get_heads();
        for i in 0..=sync_core::validate::MAX_BATCH_CHANGES {
            fork.transact(|tx| tx.put(ROOT, "notes", format!("Note {i}.")))
                .map_err(|f| f.error)?;
        }
        let batch = fork.get_changes(&before);
        ensure!(batch.len() == sync_core::validate::MAX_BATCH_CHANGES + 1);
        let got = send(&s, p, docs.audit, &batch).await?;
        special("10001 changes in one message", MEMBER, "batch.size", got);
        drain(&mut people).await?;

        // A write into an object the document does not have, and a write to
        // the root as if it were a list: refused before Automerge applies
        // them (it would panic applying either).
        let p = person(&mut people, MEMBER)?;
        let good = raw_change(&s, Some(&docs.audit), &p.actor, |tx, _| {
            tx.put(ROOT, "notes", "Closing meeting held.")?;
            Ok(())
        }).await?;
        let c = tampered(&good, |e| {
            e.operations[0].obj = sync_core::automerge::legacy::ObjectId::Id(
                sync_core::automerge::legacy::OpId::new(9999, &e.actor_id),
            );
            e.operations[0].pred = sync_core::automerge::legacy::SortedVec::new();
        });
        special("write into an object the audit lacks", MEMBER, "change.unknown_object", send(&s, p, docs.audit, &[c]).await?);
        let c = tampered(&good, |e| {
            e.operations[0].key = Key::Seq(ElementId::Head);
            e.operations[0].insert = true;
        });
        special("the root written as a list", MEMBER, "schema.root", send(&s, p, docs.audit, &[c]).await?);
        // The server goes on: the untampered change is stored.
        special("the same change untampered", MEMBER, S, send(&s, p, docs.audit, &[good]).await?);
        let took = started.elapsed();

        eprintln!("\n{backend:?}: the grid took {grid_took:?}, with the specials {took:?}");
        eprintln!("{:<44} {:<11} {:<28} got", "place", "person", "expected");
        let mut wrong = Vec::new();
        for (place, who, expected, got) in &lines {
            let ok = got.to_string() == *expected;
            eprintln!("{:<44} {:<11} {:<28} {}{}", place, who, expected, got, if ok { "" } else { "   <-- WRONG" });
            if !ok {
                wrong.push(format!("{place} by {who}: expected {expected}, got {got}"));
            }
        }
        ensure!(wrong.is_empty(), "{} of {} cases wrong:\n{}", wrong.len(), lines.len(), wrong.join("\n"));
        for p in people {
            if let Some(c) = p.client {
                drop(c.disconnect().await);
            }
        }
        s.stop().await;
        Ok(())
    }
}

/// Replaces the whole header of an existing audit.
fn new_audit_header_only(tx: &mut Transaction<'_>, h: &AuditHeader) -> Result<()> {
    let m = tx.put_object(ROOT, "header", ObjType::Map)?;
    tx.put(&m, "unit", h.unit.to_string())?;
    tx.put(&m, "number", h.number.as_str())?;
    tx.put(&m, "template", h.template_version)?;
    tx.put(&m, "lead", h.lead.to_string())?;
    tx.put(&m, "start", h.start.to_string())?;
    Ok(())
}
