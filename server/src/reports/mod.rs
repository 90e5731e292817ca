//! Reports, read from the SQL projections and never by loading documents
//! (DESIGN §6). Each is asked for a unit (with the units below it), an "as
//! of" date and filters, and is given as JSON, as CSV (UTF-8 with a byte
//! order mark, so a spreadsheet reads the Devanagari right) and as a
//! printable A4 page; each states its date and, for each device whose
//! changes it holds, when the server last received one.
//!
//! The same code answers `GET /api/v1/reports/...` and `sqm report ...`.

pub mod adherence;
pub mod ageing;
pub mod quarantine;

use std::fmt::Write as _;
use std::str::FromStr;

use serde::Serialize;
use sqlx::Row;
use sync_core::date::{Date, Timestamp};
use sync_core::ids::{ClauseKey, ProcessCode, UserId};
use sync_core::nc::Severity;

use crate::db::{Db, DbError};

/// How a report is given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `application/json`, for the tablet.
    Json,
    /// `text/csv`, for a spreadsheet.
    Csv,
    /// A printable A4 page.
    Html,
}

impl Format {
    /// The media type of the body.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
        }
    }
}

/// A format that is not one of the three.
#[derive(Debug, thiserror::Error)]
#[error("'{}' is not a report format: use json, csv or html", sync_core::text::quote(.0))]
pub struct UnknownFormat(String);

impl FromStr for Format {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Format, UnknownFormat> {
        match s {
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            _ => Err(UnknownFormat(s.chars().take(32).collect())),
        }
    }
}

/// The reports, by the name the API's path and `sqm report` give them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Report {
    /// `nc-ageing`: [`ageing`].
    NcAgeing,
    /// `programme-adherence`: [`adherence`].
    ProgrammeAdherence,
    /// `quarantine`: [`quarantine`].
    Quarantine,
}

/// A name that is no report's.
#[derive(Debug, thiserror::Error)]
#[error(
    "there is no report '{}': the reports are nc-ageing, programme-adherence and quarantine",
    sync_core::text::quote(.0)
)]
pub struct UnknownReport(String);

/// NC filters given to a report that is not about NCs: refused, never ignored.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0} takes no process, clause, class or owner filter: only the unit, the date and the format"
)]
pub struct NotFiltered(&'static str);

impl FromStr for Report {
    type Err = UnknownReport;
    fn from_str(s: &str) -> Result<Report, UnknownReport> {
        match s {
            "nc-ageing" => Ok(Report::NcAgeing),
            "programme-adherence" => Ok(Report::ProgrammeAdherence),
            "quarantine" => Ok(Report::Quarantine),
            _ => Err(UnknownReport(s.chars().take(64).collect())),
        }
    }
}

impl Report {
    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Report::NcAgeing => "nc-ageing",
            Report::ProgrammeAdherence => "programme-adherence",
            Report::Quarantine => "quarantine",
        }
    }

    /// The NC filters are for the reports about NCs only.
    pub fn check(self, filters: &Filters) -> Result<(), NotFiltered> {
        let any = filters.process.is_some()
            || filters.clause.is_some()
            || filters.class.is_some()
            || filters.owner.is_some();
        if any && self != Report::NcAgeing {
            return Err(NotFiltered(self.name()));
        }
        Ok(())
    }

    /// The report of `scope`, read and given in `format`.
    pub async fn run(self, db: &Db, scope: &Scope, format: Format) -> Result<String, DbError> {
        Ok(match self {
            Report::NcAgeing => ageing::render(&ageing::read(db, scope).await?, scope, format),
            Report::ProgrammeAdherence => {
                adherence::render(&adherence::read(db, scope).await?, scope, format)
            }
            Report::Quarantine => {
                quarantine::render(&quarantine::read(db, scope).await?, scope, format)
            }
        })
    }
}

/// The filters every report takes, each checked before it reaches SQL.
#[derive(Clone, Debug, Default)]
pub struct Filters {
    /// One process (`P03`).
    pub process: Option<ProcessCode>,
    /// One clause and the clauses under it (`3.2.1` takes `3.2.1.3`).
    pub clause: Option<ClauseKey>,
    /// `major` or `minor`.
    pub class: Option<Severity>,
    /// The process owner.
    pub owner: Option<UserId>,
}

impl Filters {
    /// The filters as the JSON form states them (`null` where none).
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "process": self.process.as_ref().map(ProcessCode::as_str),
            "clause": self.clause.as_ref().map(ClauseKey::as_str),
            "class": self.class.map(|c| c.to_string()),
            "owner": self.owner.as_ref().map(UserId::as_str),
        })
    }
}

/// What a report covers: units, a date, filters.
#[derive(Clone, Debug)]
pub struct Scope {
    /// The units, the one asked for first and then those below it.
    pub units: Vec<String>,
    /// The day ages and overdue days are counted to.
    pub as_of: Date,
    /// The filters.
    pub filters: Filters,
}

/// A device whose changes a report holds, and when the server last received one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Contributor {
    /// The device's id.
    pub device: String,
    /// Its user.
    pub username: String,
    /// When the server last stored a change from it (ISO 8601).
    pub last_synced: String,
}

/// The `WHERE` of a query over `ncs n` joined to `processes p`, with its
/// parameters in order (`$1`, `$2`, ... on both databases).
pub(crate) fn nc_where(scope: &Scope, params: &mut Vec<String>) -> String {
    let mut sql = String::new();
    let bind = |params: &mut Vec<String>, value: String| {
        params.push(value);
        format!("${}", params.len())
    };
    let units: Vec<String> = scope
        .units
        .iter()
        .map(|u| bind(params, u.clone()))
        .collect();
    let _ = write!(sql, "n.unit IN ({})", units.join(", "));
    let as_of = bind(params, scope.as_of.to_string());
    let _ = write!(sql, " AND n.raised_on <= {as_of}");
    let f = &scope.filters;
    if let Some(p) = &f.process {
        let p = bind(params, p.as_str().to_owned());
        let _ = write!(sql, " AND n.process = {p}");
    }
    if let Some(c) = &f.clause {
        // A clause key is digits and dots only: the pattern has no wildcard of its own.
        let exact = bind(params, c.as_str().to_owned());
        let under = bind(params, format!("{}.%", c.as_str()));
        let _ = write!(sql, " AND (n.clause = {exact} OR n.clause LIKE {under})");
    }
    if let Some(c) = f.class {
        let c = bind(params, c.to_string());
        let _ = write!(sql, " AND n.class = {c}");
    }
    if let Some(o) = &f.owner {
        let o = bind(params, o.as_str().to_owned());
        let _ = write!(sql, " AND p.owner = {o}");
    }
    sql
}

/// The devices whose changes to the NCs of `scope` in `states` (the NCs a
/// report shows) the server holds, each with the last it stored.
pub(crate) async fn nc_contributors(
    db: &Db,
    scope: &Scope,
    states: &[&str],
) -> Result<Vec<Contributor>, DbError> {
    let mut params = Vec::new();
    let filter = nc_where(scope, &mut params);
    let sql = format!(
        "SELECT r.device_id, r.username, MAX(r.at) FROM receipts r \
         WHERE r.doc_id IN (SELECT n.doc_id FROM ncs n \
         LEFT JOIN processes p ON p.unit = n.unit AND p.code = n.process \
         WHERE n.state IN ({}) AND {filter}) \
         GROUP BY r.device_id, r.username ORDER BY r.device_id, r.username",
        quoted(states)
    );
    // Built from fixed text and `$n` placeholders only: every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
    for p in &params {
        q = q.bind(p.as_str());
    }
    let rows = q.fetch_all(db.pool()).await?;
    rows.iter()
        .map(|r| {
            let at: i64 = r.try_get(2)?;
            Ok(Contributor {
                device: r.try_get(0)?,
                username: r.try_get(1)?,
                last_synced: iso_instant(at),
            })
        })
        .collect()
}

/// Fixed words (states) as an SQL list: `'open', 'closed'`.
pub(crate) fn quoted(words: &[&str]) -> String {
    words
        .iter()
        .map(|w| {
            debug_assert!(w.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            format!("'{w}'")
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// An instant in milliseconds as ISO 8601 in UTC, to the second.
pub fn iso_instant(ms: i64) -> String {
    let date = Date::of(Timestamp(ms));
    let secs = ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{date}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// An ISO 8601 instant (`2026-01-15T06:30:05Z`) as people read it: `15-01-2026 06:30 UTC`.
fn shown_instant(iso: &str) -> String {
    match (
        iso.get(..10).and_then(|d| d.parse::<Date>().ok()),
        iso.get(11..16),
    ) {
        (Some(d), Some(hm)) => format!("{} {hm} UTC", d.display()),
        _ => iso.to_owned(),
    }
}

/// Text for one CSV cell: quoted when it must be, and never read by a
/// spreadsheet as a formula (a leading `=`, `+`, `-` or `@` gets a `'`).
pub fn csv_cell(text: &str) -> String {
    let text = if text.starts_with(['=', '+', '-', '@']) {
        format!("'{text}")
    } else {
        text.to_owned()
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

/// One CSV line (CRLF, as RFC 4180 has it).
pub fn csv_line(cells: &[String]) -> String {
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// Text escaped for HTML.
pub fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The printable page around a report's body: A4, its title, its date, the
/// units, the filters and (for a report of documents' rows) the devices it
/// holds changes from.
pub fn page(title: &str, scope: &Scope, devices: Option<&[Contributor]>, body: &str) -> String {
    let f = &scope.filters;
    let filters: Vec<String> = [
        f.process
            .as_ref()
            .map(|p| format!("process {}", p.as_str())),
        f.clause.as_ref().map(|c| format!("clause {}", c.as_str())),
        f.class.map(|c| format!("{c} NCs")),
        f.owner.as_ref().map(|o| format!("owner {}", o.as_str())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t}</title>\n\
         <style>@page {{ size: A4; margin: 15mm; }} body {{ font-family: 'Noto Sans', sans-serif; font-size: 10pt; color: #111; }} \
         h1 {{ font-size: 15pt; margin: 0 0 4pt; }} h2 {{ font-size: 12pt; margin: 14pt 0 4pt; }} \
         table {{ border-collapse: collapse; width: 100%; }} th, td {{ border: 0.5pt solid #777; padding: 2pt 4pt; text-align: left; vertical-align: top; }} \
         td.n {{ text-align: right; font-variant-numeric: tabular-nums; }} thead {{ display: table-header-group; }} tr {{ break-inside: avoid; }} \
         .meta {{ color: #444; }} tr.late td {{ color: #a00; font-weight: 600; }}</style></head><body>\n<h1>{t}</h1>\n<p class=\"meta\">As of {as_of}; units {units}{filters}.</p>\n",
        t = html(title),
        as_of = scope.as_of.display(),
        units = html(&scope.units.join(", ")),
        filters = if filters.is_empty() {
            String::new()
        } else {
            format!("; {}", html(&filters.join(", ")))
        },
    );
    out.push_str(body);
    let Some(devices) = devices else {
        out.push_str("</body></html>\n");
        return out;
    };
    out.push_str("<h2>Devices whose changes this report holds</h2>\n");
    if devices.is_empty() {
        out.push_str("<p>None.</p>\n");
    } else {
        out.push_str("<table><thead><tr><th>Device</th><th>User</th><th>Last change received</th></tr></thead><tbody>\n");
        for d in devices {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                html(&d.device),
                html(&d.username),
                html(&shown_instant(&d.last_synced))
            );
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_when_they_must_be_and_never_run_as_formulas() {
        assert_eq!(csv_cell("NC-04"), "NC-04");
        assert_eq!(csv_cell("a, b"), "\"a, b\"");
        assert_eq!(csv_cell("say \"no\""), "\"say \"\"no\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("+1"), "'+1");
        assert_eq!(csv_cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(csv_line(&["a".into(), "b,c".into()]), "a,\"b,c\"\r\n");
    }

    #[test]
    fn instants_on_the_page_read_as_people_read_them() {
        assert_eq!(
            shown_instant("2026-01-15T06:30:05Z"),
            "15-01-2026 06:30 UTC"
        );
        assert_eq!(shown_instant("garbled"), "garbled");
    }

    #[test]
    fn html_text_is_escaped() {
        assert_eq!(
            html("<b>\"Tom\" & 'Jerry'</b>"),
            "&lt;b&gt;&quot;Tom&quot; &amp; &#39;Jerry&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn instants_read_as_iso_8601_in_utc() {
        // 2026-01-15T06:30:05Z
        assert_eq!(iso_instant(1_768_458_605_000), "2026-01-15T06:30:05Z");
    }

    #[test]
    fn filters_become_parameters_never_text_of_the_query() {
        let scope = Scope {
            units: vec!["DEMO-I".into(), "DEMO-I-DIV2".into()],
            as_of: "2026-01-15".parse().expect("date"),
            filters: Filters {
                process: Some("P03".parse().expect("code")),
                clause: Some("3.2.1".parse().expect("clause")),
                class: Some(Severity::Minor),
                owner: Some("ac.div2".parse().expect("user")),
            },
        };
        let mut params = Vec::new();
        let sql = nc_where(&scope, &mut params);
        assert_eq!(
            sql,
            "n.unit IN ($1, $2) AND n.raised_on <= $3 AND n.process = $4 \
             AND (n.clause = $5 OR n.clause LIKE $6) AND n.class = $7 AND p.owner = $8"
        );
        assert_eq!(
            params,
            [
                "DEMO-I",
                "DEMO-I-DIV2",
                "2026-01-15",
                "P03",
                "3.2.1",
                "3.2.1.%",
                "minor",
                "ac.div2"
            ]
        );
    }
}
