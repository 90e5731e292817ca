//! NC ageing: the NCs still to be dealt with (open, response submitted, plan
//! accepted, implemented) by age since raised (0–15, 16–30, 31–60, 61–90,
//! over 90 days), with days overdue and escalation level as of the date.
//! The due date that runs is the response's while the NC is open and the
//! actions' once the plan is accepted, as sync-core derives it; escalation
//! is sync-core's own rule (`workflow::escalation`), applied to the
//! projection's due dates (which already hold every extension).

use std::fmt::Write as _;

use serde::Serialize;
use sqlx::Row;
use sync_core::date::Date;
use sync_core::workflow::{Level, escalation};

use super::{Contributor, Format, Scope, csv_line, html, nc_contributors, nc_where, page, quoted};
use crate::db::{Db, DbError};

/// The states of an NC still to be dealt with.
pub const LIVE: &[&str] = &["open", "response_submitted", "plan_accepted", "implemented"];

/// The age buckets, in days since raised: label and the most days it takes.
pub const BUCKETS: &[(&str, i32)] = &[
    ("0-15", 15),
    ("16-30", 30),
    ("31-60", 60),
    ("61-90", 90),
    ("over 90", i32::MAX),
];

/// One NC of the report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AgeingRow {
    /// The NC's document id.
    pub id: String,
    /// Its number (`NC-04`), once the server gave one.
    pub number: Option<String>,
    /// Its unit.
    pub unit: String,
    /// Its process (empty for a clause no process carries).
    pub process: String,
    /// Its clause.
    pub clause: String,
    /// `major` or `minor`.
    pub class: String,
    /// The process's owner, if the process is known.
    pub owner: Option<String>,
    /// Its state.
    pub state: String,
    /// When it was raised (ISO 8601).
    pub raised_on: String,
    /// Days from raised to the report's date.
    pub age_days: i32,
    /// The age bucket.
    pub bucket: &'static str,
    /// The due date that runs in its state (ISO 8601), if any.
    pub due: Option<String>,
    /// Days past that date, if past.
    pub days_overdue: Option<i32>,
    /// `L1`, `L2` or `L3`, if at or past the due date.
    pub escalation: Option<String>,
}

/// The NC ageing report.
#[derive(Clone, Debug, Serialize)]
pub struct Ageing {
    /// `nc-ageing`.
    pub report: &'static str,
    /// The date (ISO 8601).
    pub as_of: String,
    /// The units covered.
    pub units: Vec<String>,
    /// The filters applied.
    pub filters: serde_json::Value,
    /// NCs per age bucket, every bucket present.
    pub buckets: Vec<Count>,
    /// NCs per escalation level (`none` for not escalated), every level present.
    pub levels: Vec<Count>,
    /// The NCs, oldest first.
    pub ncs: Vec<AgeingRow>,
    /// The devices whose changes the report holds.
    pub devices: Vec<Contributor>,
}

/// A count under a label.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Count {
    /// The label.
    pub label: String,
    /// How many.
    pub count: usize,
}

fn bucket_of(age: i32) -> &'static str {
    BUCKETS
        .iter()
        .find(|(_, most)| age <= *most)
        .map_or("over 90", |(label, _)| label)
}

/// Reads the report.
pub async fn read(db: &Db, scope: &Scope) -> Result<Ageing, DbError> {
    let mut params = Vec::new();
    let filter = nc_where(scope, &mut params);
    let sql = format!(
        "SELECT n.doc_id, n.number, n.unit, n.process, n.clause, n.class, p.owner, n.state, \
         n.raised_on, n.response_due, n.action_due FROM ncs n \
         LEFT JOIN processes p ON p.unit = n.unit AND p.code = n.process \
         WHERE n.state IN ({}) AND {filter} ORDER BY n.raised_on, n.doc_id",
        quoted(LIVE)
    );
    // Built from fixed text and `$n` placeholders only: every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
    for p in &params {
        q = q.bind(p.as_str());
    }
    let as_of = scope.as_of;
    let mut ncs = Vec::new();
    for r in q.fetch_all(db.pool()).await? {
        let state: String = r.try_get(7)?;
        let raised_on = date(&r, 8)?;
        let due = match state.as_str() {
            "open" => Some(date(&r, 9)?),
            "plan_accepted" => Some(date(&r, 10)?),
            _ => None,
        };
        let age_days = as_of.days_since(raised_on);
        ncs.push(AgeingRow {
            id: r.try_get(0)?,
            number: r.try_get(1)?,
            unit: r.try_get(2)?,
            process: r.try_get(3)?,
            clause: r.try_get(4)?,
            class: r.try_get(5)?,
            owner: r.try_get(6)?,
            state,
            raised_on: raised_on.to_string(),
            age_days,
            bucket: bucket_of(age_days),
            due: due.map(|d| d.to_string()),
            days_overdue: due.map(|d| as_of.days_since(d)).filter(|d| *d > 0),
            escalation: due
                .and_then(|d| escalation(d, as_of))
                .map(|l| l.to_string()),
        });
    }
    let buckets = BUCKETS
        .iter()
        .map(|(label, _)| Count {
            label: (*label).to_owned(),
            count: ncs.iter().filter(|n| n.bucket == *label).count(),
        })
        .collect();
    let levels = [None, Some(Level::L1), Some(Level::L2), Some(Level::L3)]
        .into_iter()
        .map(|l| {
            let label = l.map_or("none".to_owned(), |l| l.to_string());
            Count {
                count: ncs
                    .iter()
                    .filter(|n| n.escalation.as_deref().unwrap_or("none") == label)
                    .count(),
                label,
            }
        })
        .collect();
    Ok(Ageing {
        report: "nc-ageing",
        as_of: as_of.to_string(),
        units: scope.units.clone(),
        filters: scope.filters.json(),
        buckets,
        levels,
        ncs,
        devices: nc_contributors(db, scope, LIVE).await?,
    })
}

fn date(r: &sqlx::any::AnyRow, i: usize) -> Result<Date, DbError> {
    let text: String = r.try_get(i)?;
    text.parse()
        .map_err(|e| DbError::Corrupt(format!("ncs column {i}: {e}")))
}

/// The report in a format.
pub fn render(report: &Ageing, scope: &Scope, format: Format) -> String {
    match format {
        Format::Json => serde_json::to_string(report).unwrap_or_default(),
        Format::Csv => csv(report),
        Format::Html => printable(report, scope),
    }
}

const COLUMNS: &[&str] = &[
    "number",
    "unit",
    "process",
    "clause",
    "class",
    "owner",
    "state",
    "raised_on",
    "age_days",
    "bucket",
    "due",
    "days_overdue",
    "escalation",
    "id",
];

fn cells(n: &AgeingRow) -> Vec<String> {
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    vec![
        opt(&n.number),
        n.unit.clone(),
        n.process.clone(),
        n.clause.clone(),
        n.class.clone(),
        opt(&n.owner),
        n.state.clone(),
        n.raised_on.clone(),
        n.age_days.to_string(),
        n.bucket.to_owned(),
        opt(&n.due),
        n.days_overdue.map(|d| d.to_string()).unwrap_or_default(),
        opt(&n.escalation),
        n.id.clone(),
    ]
}

/// The CSV form: a line that says what and as of when, the NCs under a
/// header line, then the devices. Dates are ISO 8601, which spreadsheets read.
fn csv(report: &Ageing) -> String {
    let mut out = String::from("\u{feff}");
    out.push_str(&csv_line(&[
        "NC ageing".into(),
        "as of".into(),
        report.as_of.clone(),
        "units".into(),
        report.units.join(" "),
    ]));
    out.push_str(&csv_line(
        &COLUMNS.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>(),
    ));
    for n in &report.ncs {
        out.push_str(&csv_line(&cells(n)));
    }
    out.push_str("\r\n");
    out.push_str(&csv_line(&[
        "device".into(),
        "username".into(),
        "last_synced".into(),
    ]));
    for d in &report.devices {
        out.push_str(&csv_line(&[
            d.device.clone(),
            d.username.clone(),
            d.last_synced.clone(),
        ]));
    }
    out
}

fn printable(report: &Ageing, scope: &Scope) -> String {
    let mut body = String::new();
    body.push_str("<h2>Open NCs by age</h2>\n<table><thead><tr><th>Days since raised</th><th>NCs</th></tr></thead><tbody>\n");
    for c in &report.buckets {
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            html(&c.label),
            c.count
        );
    }
    body.push_str("</tbody></table>\n<h2>Open NCs by escalation level</h2>\n<table><thead><tr><th>Level</th><th>NCs</th></tr></thead><tbody>\n");
    for c in &report.levels {
        let label = if c.label == "none" {
            "Not escalated"
        } else {
            &c.label
        };
        let _ = writeln!(
            body,
            "<tr><td>{}</td><td class=\"n\">{}</td></tr>",
            html(label),
            c.count
        );
    }
    body.push_str(
        "</tbody></table>\n<h2>NCs</h2>\n<table><thead><tr><th>NC</th><th>Unit</th><th>Process</th><th>Clause</th>\
         <th>Class</th><th>Owner</th><th>State</th><th>Raised</th><th>Age (days)</th><th>Due</th>\
         <th>Days overdue</th><th>Level</th></tr></thead><tbody>\n",
    );
    let shown = |iso: &Option<String>| {
        iso.as_deref()
            .and_then(|d| d.parse::<Date>().ok())
            .map(Date::display)
            .unwrap_or_default()
    };
    for n in &report.ncs {
        let _ = writeln!(
            body,
            "<tr data-nc=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td class=\"n\">{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
            html(&n.id),
            html(n.number.as_deref().unwrap_or("(not yet numbered)")),
            html(&n.unit),
            html(&n.process),
            html(&n.clause),
            html(&n.class),
            html(n.owner.as_deref().unwrap_or("")),
            html(&n.state.replace('_', " ")),
            shown(&Some(n.raised_on.clone())),
            n.age_days,
            shown(&n.due),
            n.days_overdue.map(|d| d.to_string()).unwrap_or_default(),
            html(n.escalation.as_deref().unwrap_or("")),
        );
    }
    body.push_str("</tbody></table>\n");
    page("NC ageing", scope, Some(&report.devices), &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_fall_in_the_buckets_the_sqm_reports_use() {
        for (age, bucket) in [
            (0, "0-15"),
            (15, "0-15"),
            (16, "16-30"),
            (30, "16-30"),
            (31, "31-60"),
            (60, "31-60"),
            (61, "61-90"),
            (90, "61-90"),
            (91, "over 90"),
            (4000, "over 90"),
        ] {
            assert_eq!(bucket_of(age), bucket, "{age} days");
        }
    }
}
