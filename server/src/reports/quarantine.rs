//! Quarantine for people: the changes the server refused in a unit's
//! documents (and, for a document it never stored, those its people sent),
//! newest first: who, from which device, when, under which rule and why,
//! and what the change tried to write in readable form
//! (`sync_core::describe`). Nothing is deleted: the rows stay where the
//! writer put them; this only reads them.

use std::fmt::Write as _;

use serde::Serialize;
use sqlx::Row;
use sync_core::date::Timestamp;
use sync_core::describe::describe;

use super::{Format, Scope, csv_line, html, iso_instant, page};
use crate::db::{Db, DbError};

/// Refused changes listed at most; the report says how many more there are.
pub const MAX_ROWS: usize = 500;

/// One refused change.
#[derive(Clone, Debug, Serialize)]
pub struct Held {
    /// Its number in the quarantine.
    pub id: i64,
    /// The document it was for.
    pub doc_id: String,
    /// The document's unit (none if the server never stored the document).
    pub unit: Option<String>,
    /// Who sent it.
    pub username: String,
    /// From which device.
    pub device: String,
    /// When the server received it (ISO 8601, UTC).
    pub received_at: String,
    /// The rule that refused it.
    pub rule: String,
    /// Why, in the rule's words.
    pub message: String,
    /// What it tried to write, one line per operation.
    pub wrote: Vec<String>,
    /// Operations left out of `wrote`.
    pub more: usize,
}

/// The quarantine of a unit and the units below it.
#[derive(Clone, Debug, Serialize)]
pub struct Quarantine {
    /// `quarantine`.
    pub report: &'static str,
    /// Changes received up to the end of this day are listed (ISO 8601).
    pub as_of: String,
    /// The units covered.
    pub units: Vec<String>,
    /// How many refused changes there are in all (at most [`MAX_ROWS`] listed).
    pub total: i64,
    /// The newest first.
    pub changes: Vec<Held>,
}

/// Reads the report; the scope's filters of NCs do not apply.
pub async fn read(db: &Db, scope: &Scope) -> Result<Quarantine, DbError> {
    let mut params: Vec<String> = Vec::new();
    let mut units = Vec::new();
    for u in &scope.units {
        params.push(u.clone());
        units.push(format!("${}", params.len()));
    }
    let units = units.join(", ");
    let until = Timestamp::start_of(scope.as_of.add_days(1)).0;
    let filter = format!(
        "(d.unit IN ({units}) OR (d.id IS NULL AND q.username IN \
         (SELECT r.username FROM role_assignments r WHERE r.unit IN ({units})))) \
         AND q.received_at < {until}"
    );
    let bind = |sql: String| {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in &params {
            q = q.bind(p.clone());
        }
        q
    };
    // Built from fixed text, `$n` placeholders and a number: every value is bound.
    let total: i64 = bind(format!(
        "SELECT COUNT(*) FROM quarantine q LEFT JOIN documents d ON d.id = q.doc_id WHERE {filter}"
    ))
    .fetch_one(db.pool())
    .await?
    .try_get(0)?;
    let rows = bind(format!(
        "SELECT q.id, q.doc_id, d.unit, q.username, q.device_id, q.rule, q.message, q.bytes, \
         q.received_at FROM quarantine q LEFT JOIN documents d ON d.id = q.doc_id \
         WHERE {filter} ORDER BY q.id DESC LIMIT {MAX_ROWS}"
    ))
    .fetch_all(db.pool())
    .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for r in rows {
        let bytes: Vec<u8> = r.try_get(7)?;
        let (wrote, more) = match describe(&bytes) {
            Ok(d) => (d.lines, d.more),
            Err(e) => (vec![e.to_string()], 0),
        };
        changes.push(Held {
            id: r.try_get(0)?,
            doc_id: r.try_get(1)?,
            unit: r.try_get(2)?,
            username: r.try_get(3)?,
            device: r.try_get(4)?,
            rule: r.try_get(5)?,
            message: r.try_get(6)?,
            received_at: iso_instant(r.try_get(8)?),
            wrote,
            more,
        });
    }
    Ok(Quarantine {
        report: "quarantine",
        as_of: scope.as_of.to_string(),
        units: scope.units.clone(),
        total,
        changes,
    })
}

/// The report in a format.
pub fn render(report: &Quarantine, scope: &Scope, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string(report).unwrap_or_default(),
        Format::Csv => {
            let mut out = String::from("\u{feff}");
            out.push_str(&csv_line(&[
                "Quarantine".into(),
                "as of".into(),
                report.as_of.clone(),
                "units".into(),
                report.units.join(" "),
                "refused changes".into(),
                report.total.to_string(),
            ]));
            out.push_str(&csv_line(&[
                "id".into(),
                "received_at".into(),
                "username".into(),
                "device".into(),
                "unit".into(),
                "doc_id".into(),
                "rule".into(),
                "message".into(),
                "wrote".into(),
            ]));
            for h in &report.changes {
                out.push_str(&csv_line(&[
                    h.id.to_string(),
                    h.received_at.clone(),
                    h.username.clone(),
                    h.device.clone(),
                    h.unit.clone().unwrap_or_default(),
                    h.doc_id.clone(),
                    h.rule.clone(),
                    h.message.clone(),
                    wrote(h),
                ]));
            }
            out
        }
        Format::Html => {
            let mut body = format!(
                "<p>{} refused changes in all{}.</p>\n<table><thead><tr><th>#</th><th>Received</th><th>Who, device</th>\
                 <th>Rule and reason</th><th>What it tried to write</th></tr></thead><tbody>\n",
                report.total,
                if report.total > report.changes.len() as i64 {
                    format!("; the newest {} here", report.changes.len())
                } else {
                    String::new()
                }
            );
            for h in &report.changes {
                let _ = writeln!(
                    body,
                    "<tr data-held=\"{}\"><td class=\"n\">{}</td><td>{}</td><td>{}<br>{}</td><td>{}<br>{}</td><td>{}</td></tr>",
                    h.id,
                    h.id,
                    html(&h.received_at),
                    html(&h.username),
                    html(&h.device),
                    html(&h.rule),
                    html(&h.message),
                    html(&wrote(h)).replace('\n', "<br>"),
                );
            }
            body.push_str("</tbody></table>\n");
            page("Quarantine: refused changes", scope, None, &body)
        }
    }
}

/// What a change tried to write, as lines (and how many were left out).
fn wrote(h: &Held) -> String {
    let mut text = h.wrote.join("\n");
    if h.more > 0 {
        let _ = write!(text, "\n… and {} more", h.more);
    }
    text
}
