//! `GET /api/v1/reports/units/{unit}/...`: the reports of [`crate::reports`]
//! for the unit and the units below it, to its nodal officers and admins
//! (authorized as the admin API is), as JSON, CSV or a printable page.

use axum::extract::{Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sync_core::date::Date;

use super::AppState;
use super::admin::{STEWARDS, Steward, unit_of};
use super::error::ApiError;
use super::extract::parse_field;
use crate::auth::Caller;
use crate::reports::{Filters, Format, Report, Scope};

/// What every report takes after its unit: `?as_of=&process=&clause=&class=&owner=&format=`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReportQuery {
    as_of: Option<String>,
    process: Option<String>,
    clause: Option<String>,
    class: Option<String>,
    owner: Option<String>,
    format: Option<String>,
}

/// Each filter parsed by the type that holds it; an empty one is no filter.
fn filters(q: &ReportQuery) -> Result<Filters, ApiError> {
    fn one<T>(field: &str, v: &Option<String>) -> Result<Option<T>, ApiError>
    where
        T: std::str::FromStr,
        T::Err: std::fmt::Display,
    {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| parse_field(field, s))
            .transpose()
    }
    Ok(Filters {
        process: one("process", &q.process)?,
        clause: one("clause", &q.clause)?,
        class: one("class", &q.class)?,
        owner: one("owner", &q.owner)?,
    })
}

/// The scope of a report asked for `unit`: the caller must be a nodal
/// officer or admin there (their role reaches the units below it).
async fn scope(
    state: &AppState,
    caller: &Caller,
    unit: &str,
    q: &ReportQuery,
) -> Result<(Scope, Format), ApiError> {
    let unit = unit_of(unit)?;
    let steward = Steward::of(state, caller).await?;
    steward.require(&unit, STEWARDS, "read reports")?;
    let units = crate::db::reference::units(&state.db).await?;
    let as_of: Date = match q.as_of.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_field("as_of", s)?,
        None => steward.today,
    };
    let format = match q.format.as_deref().filter(|s| !s.is_empty()) {
        Some(s) => parse_field("format", s)?,
        None => Format::Json,
    };
    Ok((
        Scope {
            units: crate::db::reference::subtree(&units, unit.as_str()),
            as_of,
            filters: filters(q)?,
        },
        format,
    ))
}

/// The body with its type, never cached (it is as of when it was read), and
/// a CSV named for download.
fn respond(name: &str, scope: &Scope, format: Format, body: String) -> Response {
    let mut headers = vec![
        (CONTENT_TYPE, format.content_type().to_owned()),
        (CACHE_CONTROL, "no-store".to_owned()),
    ];
    if format == Format::Csv {
        headers.push((
            CONTENT_DISPOSITION,
            format!(
                "attachment; filename=\"{name}-{}-{}.csv\"",
                scope.units[0], scope.as_of
            ),
        ));
    }
    let mut response = body.into_response();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            response.headers_mut().insert(k, v);
        }
    }
    response
}

/// A report of the unit asked for, as the query asks.
async fn serve(
    report: Report,
    state: &AppState,
    caller: &Caller,
    unit: &str,
    q: &ReportQuery,
) -> Result<Response, ApiError> {
    let (scope, format) = scope(state, caller, unit, q).await?;
    report
        .check(&scope.filters)
        .map_err(|e| ApiError::BadRequest(format!("{e}.")))?;
    let body = report.run(&state.db, &scope, format).await?;
    Ok(respond(report.name(), &scope, format, body))
}

/// `GET /api/v1/reports/units/{unit}/nc-ageing`.
pub async fn nc_ageing(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    serve(Report::NcAgeing, &state, &caller, &unit, &q).await
}

/// `GET /api/v1/reports/units/{unit}/programme-adherence`.
pub async fn programme_adherence(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    serve(Report::ProgrammeAdherence, &state, &caller, &unit, &q).await
}

/// `GET /api/v1/reports/units/{unit}/quarantine`: the refused changes, as
/// people read them.
pub async fn quarantine(
    State(state): State<AppState>,
    caller: Caller,
    Path(unit): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    serve(Report::Quarantine, &state, &caller, &unit, &q).await
}
