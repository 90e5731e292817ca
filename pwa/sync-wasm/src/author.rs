//! The signed-in user's rights, as the server's reference data gives them to
//! the device, read from JSON into sync-core's [`Author`]:
//!
//! ```json
//! {"user": "k.iyer",
//!  "grants": [{"unit": "DEMO-I", "role": "auditor", "from": "2025-04-01", "until": null}],
//!  "audits": {"<audit document id>": "lead"},
//!  "planned": {"<audit document id>": {"unit": "DEMO-I", "number": "IA/DEMO-I/2025-26/003",
//!              "template_version": 2, "lead": "k.iyer",
//!              "checklist": {"version": 2, "items": {"sd.timeliness@P03":
//!                {"answer": "cpna", "evidence": true, "required": "always"}}}}},
//!  "processes": [["DEMO-I", "P03"]],
//!  "actors": ["5a51010000000000000000000000001"],
//!  "due_rules": {"DEMO-I": {"response_days_major": 7, "response_days_minor": 7,
//!                           "action_days_major": 30, "action_days_minor": 60}}}
//! ```
//!
//! Roles: `auditor`, `process_owner`, `nodal_officer`, `admin`; team roles:
//! `lead`, `member`. Everything but `user` may be left out.

use std::collections::BTreeMap;

use serde::Deserialize;
use sync_core::automerge::ActorId;
use sync_core::checklist::Checklist;
use sync_core::nc::DueRules;
use sync_core::permissions::{Author, PlannedAudit, RoleGrant};

use crate::error::{GlueError, parse, parse_opt};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthorJson {
    user: String,
    #[serde(default)]
    grants: Vec<GrantJson>,
    #[serde(default)]
    audits: BTreeMap<String, String>,
    #[serde(default)]
    planned: BTreeMap<String, PlanJson>,
    #[serde(default)]
    processes: Vec<(String, String)>,
    #[serde(default)]
    actors: Vec<String>,
    #[serde(default)]
    due_rules: BTreeMap<String, RulesJson>,
}

/// A unit's due-date rules, in days from raising.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RulesJson {
    response_days_major: i32,
    response_days_minor: i32,
    action_days_major: i32,
    action_days_minor: i32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantJson {
    unit: String,
    role: String,
    from: String,
    #[serde(default)]
    until: Option<String>,
}

/// A planned audit: what a new audit document must say.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanJson {
    unit: String,
    number: String,
    template_version: u64,
    lead: String,
    /// The pinned checklist resolved for the audit's scope: what the audit
    /// must answer before review (the server's rules, so the tablet agrees).
    checklist: Checklist,
}

/// Reads an author from its JSON text.
pub fn parse_author(json: &str) -> Result<Author, GlueError> {
    let dto: AuthorJson =
        serde_json::from_str(json).map_err(|e| GlueError::input("author JSON", e))?;
    let mut author = Author::new(parse("author user", &dto.user)?);
    for (i, g) in dto.grants.iter().enumerate() {
        let what = |field: &str| format!("author grants[{i}].{field}");
        author.grants.push(RoleGrant {
            unit: parse(&what("unit"), &g.unit)?,
            role: parse(&what("role"), &g.role)?,
            from: parse(&what("from"), &g.from)?,
            until: parse_opt(&what("until"), g.until.as_deref())?,
        });
    }
    for (id, team_role) in &dto.audits {
        let what = format!("author audits[{id:?}]");
        author
            .audits
            .insert(parse(&what, id)?, parse(&what, team_role)?);
    }
    for (id, p) in &dto.planned {
        let what = |field: &str| format!("author planned[{id:?}].{field}");
        author.planned.insert(
            parse(&what("id"), id)?,
            PlannedAudit {
                unit: parse(&what("unit"), &p.unit)?,
                number: p.number.clone(),
                template_version: p.template_version,
                lead: parse(&what("lead"), &p.lead)?,
                checklist: std::sync::Arc::new(p.checklist.clone()),
            },
        );
    }
    for (i, (unit, process)) in dto.processes.iter().enumerate() {
        let what = format!("author processes[{i}]");
        author
            .processes
            .insert((parse(&what, unit)?, parse(&what, process)?));
    }
    for (unit, r) in &dto.due_rules {
        let days = [
            r.response_days_major,
            r.response_days_minor,
            r.action_days_major,
            r.action_days_minor,
        ];
        if days.iter().any(|d| !(1..=365).contains(d)) {
            return Err(GlueError::input(
                format!("author due_rules[{unit:?}]"),
                "each rule is 1 to 365 days",
            ));
        }
        author.due_rules.insert(
            parse(&format!("author due_rules[{unit:?}]"), unit)?,
            DueRules {
                response_days_major: r.response_days_major,
                response_days_minor: r.response_days_minor,
                action_days_major: r.action_days_major,
                action_days_minor: r.action_days_minor,
            },
        );
    }
    for (i, hex) in dto.actors.iter().enumerate() {
        author
            .actors
            .insert(actor(&format!("author actors[{i}]"), hex)?);
    }
    Ok(author)
}

/// Reads an Automerge actor id from hex (non-empty, as the server registers it).
pub fn actor(what: &str, hex: &str) -> Result<ActorId, GlueError> {
    if hex.is_empty() || !hex.len().is_multiple_of(2) || !hex.bytes().all(|b| b.is_ascii_hexdigit())
    {
        return Err(GlueError::input(
            what,
            format!("'{hex}' is not an actor id: use an even number of hexadecimal digits"),
        ));
    }
    parse(what, hex)
}

#[cfg(test)]
mod tests {
    use sync_core::permissions::{Role, TeamRole};

    use super::*;

    const LEAD: &str = r#"{
        "user": "k.iyer",
        "grants": [{"unit": "DEMO-I", "role": "auditor", "from": "2025-04-01"}],
        "audits": {"019bb4c8-0800-7303-8303-030303030303": "lead"},
        "planned": {"019bb4c8-0800-7303-8303-030303030303": {"unit": "DEMO-I",
            "number": "IA/DEMO-I/2025-26/003", "template_version": 2, "lead": "k.iyer",
            "checklist": {"version": 2, "items": {
                "sd.timeliness@P03": {"answer": "cpna", "evidence": true, "required": "always"},
                "sd.late_cases@P03": {"answer": "number", "evidence": false,
                    "required": {"when": ["sd.timeliness@P03", ["partly", "not_conform"]]}}}}}},
        "processes": [["DEMO-I", "P03"]],
        "actors": ["5a510100000000000000000000000001"]
    }"#;

    #[test]
    fn a_full_author_parses_into_sync_core_types() -> Result<(), GlueError> {
        let a = parse_author(LEAD)?;
        assert_eq!(a.user.as_str(), "k.iyer");
        assert_eq!(a.grants.len(), 1);
        assert_eq!(a.grants[0].role, Role::Auditor);
        assert_eq!(a.grants[0].until, None);
        assert_eq!(a.audits.values().next(), Some(&TeamRole::Lead));
        assert_eq!(
            a.planned.values().next().map(|p| p.number.as_str()),
            Some("IA/DEMO-I/2025-26/003")
        );
        let checklist = &a.planned.values().next().expect("a plan").checklist;
        let late = checklist
            .rule(&"sd.late_cases@P03".parse().expect("a key"))
            .expect("the late count");
        assert_eq!(
            late.required,
            sync_core::checklist::Condition::When(
                "sd.timeliness@P03".parse().expect("a key"),
                vec!["partly".into(), "not_conform".into()]
            )
        );
        assert_eq!(a.processes.len(), 1);
        assert_eq!(a.actors.len(), 1);
        Ok(())
    }

    #[test]
    fn a_units_due_rules_are_1_to_365_days_each() {
        let with = |days: i32| {
            format!(
                r#"{{"user": "a.rao", "due_rules": {{"DEMO-I": {{"response_days_major": {days},
                    "response_days_minor": 7, "action_days_major": 365, "action_days_minor": 60}}}}}}"#
            )
        };
        for (days, ok) in [(0, false), (1, true), (365, true), (366, false)] {
            match parse_author(&with(days)) {
                Ok(a) => {
                    assert!(ok, "{days} days accepted");
                    let unit = "DEMO-I".parse().expect("a unit");
                    assert_eq!(a.due_rules_of(&unit).response_days_major, days);
                }
                Err(e) => {
                    assert!(!ok, "{days} days refused: {e}");
                    assert!(e.to_string().contains("due_rules"), "{e}");
                }
            }
        }
    }

    #[test]
    fn bad_authors_are_refused_with_the_field_named() {
        let cases = [
            ("{}", "missing field `user`"),
            (r#"{"user": "K.Iyer"}"#, "author user"),
            (
                r#"{"user": "k", "grants": [{"unit": "DEMO-I", "role": "boss", "from": "2025-04-01"}]}"#,
                "grants[0].role",
            ),
            (
                r#"{"user": "k", "grants": [{"unit": "DEMO-I", "role": "admin", "from": "2025-02-30"}]}"#,
                "grants[0].from",
            ),
            (r#"{"user": "k", "audits": {"x": "lead"}}"#, "audits[\"x\"]"),
            (
                r#"{"user": "k", "planned": {"019bb4c8-0800-7303-8303-030303030303":
                    {"unit": "demo", "number": "1", "template_version": 2, "lead": "k",
                     "checklist": {"version": 2, "items": {}}}}}"#,
                "planned[\"019bb4c8-0800-7303-8303-030303030303\"].unit",
            ),
            (
                r#"{"user": "k", "planned": {"019bb4c8-0800-7303-8303-030303030303":
                    {"unit": "DEMO-I", "number": "1", "template_version": 2, "lead": "k"}}}"#,
                "missing field `checklist`",
            ),
            (
                r#"{"user": "k", "planned": {"019bb4c8-0800-7303-8303-030303030303":
                    {"unit": "DEMO-I", "number": "1", "template_version": 2, "lead": "k",
                     "checklist": {"version": 2, "items": {"Sd.x": {"answer": "cpna",
                     "evidence": false, "required": "always"}}}}}}"#,
                "checklist item key",
            ),
            (r#"{"user": "k", "actors": ["abc"]}"#, "actors[0]"),
            (
                r#"{"user": "k", "colour": "red"}"#,
                "unknown field `colour`",
            ),
            ("not json", "author JSON"),
        ];
        for (json, expect) in cases {
            match parse_author(json) {
                Ok(a) => panic!("{json} parsed as {a:?}"),
                Err(e) => assert!(e.to_string().contains(expect), "{json}: {e}"),
            }
        }
    }
}
