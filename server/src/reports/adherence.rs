//! Programme adherence (SQM 4.3): the audits a unit planned for the
//! financial year of the date asked (April to March), against those begun
//! and those reported. An audit is due once its planned first day is on or
//! before the date; begun once its document holds a start on or before the
//! date; reported if begun and the server now holds it with its report
//! issued (or closed: the projection keeps no day of issue). A due audit
//! not begun is late. Read from `planned_audits`,
//! `programmes` and the `audits` projection rows.

use std::fmt::Write as _;

use serde::Serialize;
use sqlx::Row;
use sync_core::date::Date;

use super::{Format, Scope, csv_line, html, page};
use crate::db::{Db, DbError};

/// One planned audit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PlannedRow {
    /// The planned audit's id (its document's, once begun).
    pub id: String,
    /// Its number.
    pub number: String,
    /// Its unit.
    pub unit: String,
    /// Its planned days (ISO 8601).
    pub planned_from: String,
    /// Its planned last day (ISO 8601).
    pub planned_to: String,
    /// Its state as the server holds it (`planned` if no tablet began it).
    pub state: String,
    /// Its planned first day is on or before the date.
    pub due: bool,
    /// Its document holds a start on or before the date.
    pub begun: bool,
    /// Begun, and its report is issued now (or it is closed).
    pub reported: bool,
    /// Due and not begun.
    pub late: bool,
}

/// One unit's figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UnitFigures {
    /// The unit.
    pub unit: String,
    /// Its programme for the year, if there is one: when it was approved (ISO 8601), if it was.
    pub programme_approved_on: Option<String>,
    /// Audits planned in the year.
    pub planned: usize,
    /// Of those, due by the date.
    pub due: usize,
    /// Of those, begun.
    pub begun: usize,
    /// Of those, reported.
    pub reported: usize,
    /// Due and not begun.
    pub late: usize,
    /// Begun out of due, in whole percent (none while nothing is due).
    pub adherence_percent: Option<u32>,
}

/// The report.
#[derive(Clone, Debug, Serialize)]
pub struct Adherence {
    /// `programme-adherence`.
    pub report: &'static str,
    /// The date (ISO 8601).
    pub as_of: String,
    /// The financial year, `2025-26`.
    pub fy: String,
    /// The units covered.
    pub units: Vec<String>,
    /// Each unit's figures, in the order of `units`.
    pub figures: Vec<UnitFigures>,
    /// Every planned audit of the year, by planned first day.
    pub audits: Vec<PlannedRow>,
}

/// The financial year of a day (April to March): its name and its first and last days.
pub fn financial_year(day: Date) -> (String, Date, Date) {
    let (y, m, _) = day.ymd();
    let first = if m >= 4 { y } else { y - 1 };
    let start = Date::from_ymd(first, 4, 1).unwrap_or(day);
    let end = Date::from_ymd(first + 1, 3, 31).unwrap_or(day);
    (format!("{first}-{:02}", (first + 1) % 100), start, end)
}

/// Reads the report; the NC filters do not apply.
pub async fn read(db: &Db, scope: &Scope) -> Result<Adherence, DbError> {
    let (fy, start, end) = financial_year(scope.as_of);
    let mut params: Vec<String> = scope.units.clone();
    let units = (1..=params.len())
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ");
    params.push(start.to_string());
    params.push(end.to_string());
    let (from, to) = (params.len() - 1, params.len());
    let sql = format!(
        "SELECT p.id, p.number, p.unit, p.planned_from, p.planned_to, a.state, a.start_on \
         FROM planned_audits p LEFT JOIN audits a ON a.doc_id = p.id \
         WHERE p.unit IN ({units}) AND p.planned_from >= ${from} AND p.planned_from <= ${to} \
         ORDER BY p.planned_from, p.number"
    );
    // Built from fixed text and `$n` placeholders only: every value is bound.
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for p in &params {
        q = q.bind(p.clone());
    }
    let as_of = scope.as_of.to_string();
    let mut audits = Vec::new();
    for r in q.fetch_all(db.pool()).await? {
        let state: Option<String> = r.try_get(5)?;
        let start_on: Option<String> = r.try_get(6)?;
        let planned_from: String = r.try_get(3)?;
        let due = planned_from <= as_of;
        let begun = start_on.is_some_and(|s| s <= as_of);
        let reported = begun && matches!(state.as_deref(), Some("report_issued" | "closed"));
        audits.push(PlannedRow {
            id: r.try_get(0)?,
            number: r.try_get(1)?,
            unit: r.try_get(2)?,
            planned_from,
            planned_to: r.try_get(4)?,
            state: state.unwrap_or_else(|| "planned".into()),
            due,
            begun,
            reported,
            late: due && !begun,
        });
    }
    let mut figures = Vec::new();
    for unit in &scope.units {
        let approved =
            sqlx::query("SELECT approved_on FROM programmes WHERE unit = $1 AND fy = $2")
                .bind(unit.as_str())
                .bind(fy.as_str())
                .fetch_optional(db.pool())
                .await?
                .map(|r| r.try_get::<Option<String>, _>(0))
                .transpose()?
                .flatten();
        let mine: Vec<&PlannedRow> = audits.iter().filter(|a| &a.unit == unit).collect();
        let count = |f: fn(&PlannedRow) -> bool| mine.iter().filter(|a| f(a)).count();
        let (due, begun) = (count(|a| a.due), count(|a| a.due && a.begun));
        figures.push(UnitFigures {
            unit: unit.clone(),
            programme_approved_on: approved,
            planned: mine.len(),
            due,
            begun,
            reported: count(|a| a.reported),
            late: count(|a| a.late),
            adherence_percent: (due > 0).then(|| u32::try_from(begun * 100 / due).unwrap_or(100)),
        });
    }
    Ok(Adherence {
        report: "programme-adherence",
        as_of,
        fy,
        units: scope.units.clone(),
        figures,
        audits,
    })
}

/// The report in a format.
pub fn render(report: &Adherence, scope: &Scope, format: Format) -> String {
    let yes = |b: bool| if b { "yes" } else { "no" }.to_owned();
    match format {
        Format::Json => serde_json::to_string(report).unwrap_or_default(),
        Format::Csv => {
            let mut out = String::from("\u{feff}");
            out.push_str(&csv_line(&[
                "Programme adherence".into(),
                "as of".into(),
                report.as_of.clone(),
                "financial year".into(),
                report.fy.clone(),
            ]));
            out.push_str(&csv_line(
                &[
                    "unit",
                    "programme_approved_on",
                    "planned",
                    "due",
                    "begun",
                    "reported",
                    "late",
                    "adherence_percent",
                ]
                .map(String::from),
            ));
            for f in &report.figures {
                out.push_str(&csv_line(&[
                    f.unit.clone(),
                    f.programme_approved_on.clone().unwrap_or_default(),
                    f.planned.to_string(),
                    f.due.to_string(),
                    f.begun.to_string(),
                    f.reported.to_string(),
                    f.late.to_string(),
                    f.adherence_percent
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                ]));
            }
            out.push_str("\r\n");
            out.push_str(&csv_line(
                &[
                    "number",
                    "unit",
                    "planned_from",
                    "planned_to",
                    "state",
                    "due",
                    "begun",
                    "reported",
                    "late",
                ]
                .map(String::from),
            ));
            for a in &report.audits {
                out.push_str(&csv_line(&[
                    a.number.clone(),
                    a.unit.clone(),
                    a.planned_from.clone(),
                    a.planned_to.clone(),
                    a.state.clone(),
                    yes(a.due),
                    yes(a.begun),
                    yes(a.reported),
                    yes(a.late),
                ]));
            }
            out
        }
        Format::Html => {
            let shown = |iso: &str| iso.parse::<Date>().map(Date::display).unwrap_or_default();
            let mut body = format!(
                "<p>Financial year {}.</p>\n<table><thead><tr><th>Unit</th><th>Programme approved</th><th>Planned</th>\
                 <th>Due</th><th>Begun</th><th>Reported</th><th>Late</th><th>Adherence</th></tr></thead><tbody>\n",
                html(&report.fy)
            );
            for f in &report.figures {
                let _ = writeln!(
                    body,
                    "<tr data-unit=\"{u}\"><td>{u}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                     <td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    f.programme_approved_on
                        .as_deref()
                        .map(shown)
                        .unwrap_or_else(|| "not approved".into()),
                    f.planned,
                    f.due,
                    f.begun,
                    f.reported,
                    f.late,
                    f.adherence_percent
                        .map(|p| format!("{p} %"))
                        .unwrap_or_default(),
                    u = html(&f.unit),
                );
            }
            body.push_str(
                "</tbody></table>\n<h2>Audits</h2>\n<table><thead><tr><th>Audit</th><th>Unit</th><th>Planned</th>\
                 <th>State</th><th>Begun</th><th>Reported</th></tr></thead><tbody>\n",
            );
            for a in &report.audits {
                let _ = writeln!(
                    body,
                    "<tr data-audit=\"{}\"{}><td>{}</td><td>{}</td><td>{} to {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                    html(&a.id),
                    if a.late { " class=\"late\"" } else { "" },
                    html(&a.number),
                    html(&a.unit),
                    shown(&a.planned_from),
                    shown(&a.planned_to),
                    html(&a.state.replace('_', " ")),
                    yes(a.begun),
                    yes(a.reported),
                );
            }
            body.push_str("</tbody></table>\n");
            page("Programme adherence", scope, None, &body)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_financial_year_runs_from_april_to_march() {
        let d = |s: &str| s.parse::<Date>().expect("date");
        assert_eq!(
            financial_year(d("2026-01-15")),
            ("2025-26".into(), d("2025-04-01"), d("2026-03-31"))
        );
        assert_eq!(financial_year(d("2025-04-01")).0, "2025-26");
        assert_eq!(financial_year(d("2025-03-31")).0, "2024-25");
        assert_eq!(financial_year(d("2099-12-31")).0, "2099-00");
    }
}
