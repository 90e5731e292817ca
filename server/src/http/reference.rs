//! `GET /api/v1/reference`: everything a device needs offline in one call,
//! with an ETag so an unchanged bundle costs a 304.
//!
//! The bundle holds the caller's rights in the shape sync-core's glue reads
//! (`author`), so the tablet checks edits with the same rules as the server.

use std::collections::BTreeSet;

use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, ETAG, IF_NONE_MATCH};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::AppState;
use super::error::ApiError;
use crate::access;
use crate::auth::Caller;
use crate::db::accounts::hex;
use crate::db::reference::{
    self, ManualIssue, Person, PlannedAudit, Process, Programme, Template, Unit,
};
use sync_core::permissions::Role;

#[derive(Debug, Serialize)]
struct Grant {
    unit: String,
    role: String,
    from: String,
    until: Option<String>,
}

/// What a new audit document must say, as `pwa/sync-wasm` reads it.
#[derive(Debug, Serialize)]
struct PlanJson {
    unit: String,
    number: String,
    template_version: u64,
    lead: String,
    /// The pinned checklist resolved for the audit's scope.
    checklist: sync_core::checklist::Checklist,
}

/// The caller's rights, as `pwa/sync-wasm`'s `Device` reads them.
#[derive(Debug, Serialize)]
struct AuthorJson {
    user: String,
    grants: Vec<Grant>,
    audits: std::collections::BTreeMap<String, String>,
    planned: std::collections::BTreeMap<String, PlanJson>,
    processes: Vec<(String, String)>,
    actors: Vec<String>,
    /// Due-date rules of the units that set their own, by unit.
    due_rules: std::collections::BTreeMap<String, RulesJson>,
}

/// A unit's due-date rules, in days from raising an NC.
#[derive(Debug, Serialize)]
struct RulesJson {
    response_days_major: i32,
    response_days_minor: i32,
    action_days_major: i32,
    action_days_minor: i32,
}

#[derive(Debug, Serialize)]
struct Bundle {
    author: AuthorJson,
    units: Vec<Unit>,
    processes: Vec<Process>,
    people: Vec<Person>,
    manual_issues: Vec<ManualIssue>,
    templates: Vec<Template>,
    programmes: Vec<Programme>,
    audits: Vec<PlannedAudit>,
    /// Every amendment, with which of the units the caller stewards (a
    /// nodal officer's or admin's, and those below) acknowledged it and
    /// which have yet to; for anyone else both lists are empty.
    amendments: Vec<super::admin::templates::AmendmentStatus>,
}

/// The caller's offline bundle.
pub async fn bundle(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let db = &state.db;
    let today = access::today();
    let author = access::author_of(db, &caller.username).await?;
    let all_units = reference::units(db).await?;
    let mine = access::units_of(&author.grants, today);
    let oversees: BTreeSet<String> = author
        .grants
        .iter()
        .filter(|g| g.in_force(today) && matches!(g.role, Role::NodalOfficer | Role::Admin))
        .map(|g| g.unit.to_string())
        .collect();
    let mut unit_codes: BTreeSet<String> = mine.iter().map(ToString::to_string).collect();
    for u in mine.iter() {
        unit_codes.extend(reference::ancestors(&all_units, u.as_str()));
    }
    let mut processes = Vec::new();
    let mut people = Vec::new();
    let mut programmes = Vec::new();
    let mut audits = Vec::new();
    for unit in mine.iter().map(ToString::to_string) {
        processes.extend(reference::processes_of_unit(db, &unit).await?);
        people.extend(reference::people_of_unit(db, &unit).await?);
        programmes.extend(reference::programmes_of_unit(db, &unit).await?);
        let planned = reference::planned_audits_of_unit(db, &unit).await?;
        audits.extend(planned.into_iter().filter(|a| {
            oversees.contains(&a.unit) || a.team.iter().any(|m| m.username == caller.username)
        }));
    }
    people.sort_by(|a, b| a.username.cmp(&b.username));
    people.dedup();
    let bundle = Bundle {
        author: AuthorJson {
            user: author.user.to_string(),
            grants: author
                .grants
                .iter()
                .map(|g| Grant {
                    unit: g.unit.to_string(),
                    role: g.role.to_string(),
                    from: g.from.to_string(),
                    until: g.until.map(|d| d.to_string()),
                })
                .collect(),
            audits: author
                .audits
                .iter()
                .map(|(id, r)| (id.to_string(), r.to_string()))
                .collect(),
            planned: author
                .planned
                .iter()
                .map(|(id, p)| {
                    let plan = PlanJson {
                        unit: p.unit.to_string(),
                        number: p.number.clone(),
                        template_version: p.template_version,
                        lead: p.lead.to_string(),
                        checklist: (*p.checklist).clone(),
                    };
                    (id.to_string(), plan)
                })
                .collect(),
            processes: author
                .processes
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            actors: author.actors.iter().map(|a| a.to_hex_string()).collect(),
            due_rules: author
                .due_rules
                .iter()
                .map(|(unit, r)| {
                    let rules = RulesJson {
                        response_days_major: r.response_days_major,
                        response_days_minor: r.response_days_minor,
                        action_days_major: r.action_days_major,
                        action_days_minor: r.action_days_minor,
                    };
                    (unit.to_string(), rules)
                })
                .collect(),
        },
        units: all_units
            .into_iter()
            .filter(|u| unit_codes.contains(&u.code))
            .collect(),
        processes,
        people,
        manual_issues: reference::manual_issues(db).await?,
        templates: reference::templates(db).await?,
        programmes,
        audits,
        amendments: super::admin::templates::status_for(&state, &author.grants, today).await?,
    };
    let body = serde_json::to_vec(&bundle).map_err(|e| ApiError::Internal(e.to_string()))?;
    let etag = format!("\"{}\"", &hex(&Sha256::digest(&body))[..32]);
    let etag_value = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.to_string()))?;
    let cache = HeaderValue::from_static("private, no-cache");
    let matches = headers
        .get(IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(',')
                .map(|t| t.trim().trim_start_matches("W/"))
                .any(|t| t == etag || t == "*")
        });
    if matches {
        return Ok((
            StatusCode::NOT_MODIFIED,
            [(ETAG, etag_value), (CACHE_CONTROL, cache)],
        )
            .into_response());
    }
    Ok((
        StatusCode::OK,
        [
            (ETAG, etag_value),
            (CACHE_CONTROL, cache),
            (
                axum::http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            ),
        ],
        body,
    )
        .into_response())
}
