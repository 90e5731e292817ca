//! The JSON edit vocabulary, mapped one to one onto [`sync_core::edit::Edit`],
//! and the JSON form of a "may I edit this?" target. Every edit is an object
//! whose `edit` names it, e.g.
//!
//! ```json
//! {"edit": "set_response", "key": "sd.timeliness@P03", "answer": {"cpna": "partly"}, "note": "..."}
//! {"edit": "move", "move": "raise", "note": ""}
//! ```
//!
//! Ids, keys, codes and dates are parsed by sync-core's own `FromStr`s, so a
//! value that reaches sync-core is valid; anything else is a [`GlueError`]
//! naming the field.

use serde::Deserialize;
use sync_core::audit::{AuditHeader, Evidence};
use sync_core::edit::Edit;
use sync_core::nc::{Action, NcLink};
use sync_core::permissions::{Field, Target};

use crate::answer::{AnswerJson, EvidenceJson};
use crate::error::{GlueError, parse, parse_opt};

/// One edit, as JS sends it.
#[derive(Deserialize)]
#[serde(tag = "edit", rename_all = "snake_case", deny_unknown_fields)]
enum EditJson {
    CreateAudit {
        unit: String,
        number: String,
        scope: Vec<String>,
        template_version: u64,
        lead: String,
        team: Vec<String>,
        start: String,
        #[serde(default)]
        end: Option<String>,
    },
    SetResponse {
        key: String,
        answer: AnswerJson,
        #[serde(default)]
        note: String,
        #[serde(default)]
        evidence: Vec<EvidenceJson>,
    },
    ClearResponse {
        key: String,
    },
    PutFinding {
        id: String,
        class: String,
        clause: String,
        #[serde(default)]
        process: Option<String>,
        text: String,
        #[serde(default)]
        evidence: Vec<EvidenceJson>,
    },
    SetNotes {
        text: String,
    },
    CreateNc {
        unit: String,
        audit: String,
        finding: String,
        /// Absent for an NC on a clause no process carries (3.4).
        #[serde(default)]
        process: Option<String>,
        clause: String,
        class: String,
        raised_on: String,
        description: String,
        #[serde(default)]
        provisional: String,
    },
    SetDescription {
        text: String,
    },
    SetCorrection {
        text: String,
    },
    SetRootCause {
        text: String,
    },
    PutAction {
        id: String,
        text: String,
        owner: String,
        target: String,
        #[serde(default)]
        done_on: Option<String>,
    },
    Extend {
        of: String,
        due: String,
        justification: String,
    },
    RequestExtension {
        id: String,
        of: String,
        due: String,
        justification: String,
    },
    GrantExtension {
        request: String,
    },
    RefuseExtension {
        request: String,
        reason: String,
    },
    SetVerification {
        note: String,
        on: String,
    },
    AttachNcEvidence {
        of: String,
        file: EvidenceJson,
    },
    Move {
        #[serde(rename = "move")]
        mv: String,
        #[serde(default)]
        note: String,
    },
    CreateReview {
        unit: String,
        title: String,
    },
    SetMinutes {
        text: String,
    },
    HoldReview {
        on: String,
    },
    AddDecision {
        text: String,
    },
}

/// What "may I edit this?" asks about: `{"field": "nc_owner_fields"}` or `{"move": "raise"}`.
#[derive(Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum TargetJson {
    Field(String),
    Move(String),
}

/// A parsed target; owns the move name that [`Target`] borrows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OwnedTarget {
    /// A field of the document.
    Field(Field),
    /// A lifecycle move, by name.
    Move(String),
}

impl OwnedTarget {
    /// The sync-core target.
    pub fn as_target(&self) -> Target<'_> {
        match self {
            OwnedTarget::Field(f) => Target::Field(*f),
            OwnedTarget::Move(m) => Target::Move(m),
        }
    }
}

/// Reads a target from its JSON text.
pub fn parse_target(json: &str) -> Result<OwnedTarget, GlueError> {
    let dto: TargetJson =
        serde_json::from_str(json).map_err(|e| GlueError::input("target JSON", e))?;
    Ok(match dto {
        TargetJson::Move(mv) => OwnedTarget::Move(mv),
        TargetJson::Field(name) => OwnedTarget::Field(match name.as_str() {
            "audit_header" => Field::AuditHeader,
            "audit_content" => Field::AuditContent,
            "nc_description" => Field::NcDescription,
            "nc_owner_fields" => Field::NcOwnerFields,
            "nc_verification" => Field::NcVerification,
            "nc_extension" => Field::NcExtension,
            "nc_implementation_evidence" => Field::NcImplementationEvidence,
            "nc_verification_evidence" => Field::NcVerificationEvidence,
            "review_content" => Field::ReviewContent,
            _ => {
                return Err(GlueError::input(
                    "target field",
                    format!(
                        "'{name}' is not a field: use audit_header, audit_content, nc_description, \
                         nc_owner_fields, nc_verification, nc_extension, \
                         nc_implementation_evidence, nc_verification_evidence or review_content"
                    ),
                ));
            }
        }),
    })
}

/// Reads an edit from its JSON text.
pub fn parse_edit(json: &str) -> Result<Edit, GlueError> {
    let dto: EditJson = serde_json::from_str(json).map_err(|e| GlueError::input("edit JSON", e))?;
    Ok(match dto {
        EditJson::CreateAudit {
            unit,
            number,
            scope,
            template_version,
            lead,
            team,
            start,
            end,
        } => Edit::CreateAudit(AuditHeader {
            unit: parse("unit", &unit)?,
            number,
            scope,
            template_version,
            lead: parse("lead", &lead)?,
            team: team
                .iter()
                .map(|u| parse("team", u))
                .collect::<Result<_, _>>()?,
            start: parse("start", &start)?,
            end: parse_opt("end", end.as_deref())?,
        }),
        EditJson::SetResponse {
            key,
            answer,
            note,
            evidence,
        } => Edit::SetResponse {
            key: parse("key", &key)?,
            answer: answer.into_answer()?,
            note,
            evidence: evidence_list(evidence)?,
        },
        EditJson::ClearResponse { key } => Edit::ClearResponse(parse("key", &key)?),
        EditJson::PutFinding {
            id,
            class,
            clause,
            process,
            text,
            evidence,
        } => Edit::PutFinding {
            id: parse("id", &id)?,
            class: parse("class", &class)?,
            clause: parse("clause", &clause)?,
            process: parse_opt("process", process.as_deref())?,
            text,
            evidence: evidence_list(evidence)?,
        },
        EditJson::SetNotes { text } => Edit::SetNotes(text),
        EditJson::CreateNc {
            unit,
            audit,
            finding,
            process,
            clause,
            class,
            raised_on,
            description,
            provisional,
        } => Edit::CreateNc {
            link: NcLink {
                unit: parse("unit", &unit)?,
                audit: parse("audit", &audit)?,
                finding: parse("finding", &finding)?,
                process: parse_opt("process", process.as_deref())?,
                clause: parse("clause", &clause)?,
                class: parse("class", &class)?,
                raised_on: parse("raised_on", &raised_on)?,
            },
            description,
            provisional,
        },
        EditJson::SetDescription { text } => Edit::SetDescription(text),
        EditJson::SetCorrection { text } => Edit::SetCorrection(text),
        EditJson::SetRootCause { text } => Edit::SetRootCause(text),
        EditJson::PutAction {
            id,
            text,
            owner,
            target,
            done_on,
        } => Edit::PutAction {
            id: parse("id", &id)?,
            action: Action {
                text,
                owner,
                target: parse("target", &target)?,
                done_on: parse_opt("done_on", done_on.as_deref())?,
            },
        },
        EditJson::Extend {
            of,
            due,
            justification,
        } => Edit::Extend {
            of: parse("of", &of)?,
            due: parse("due", &due)?,
            justification,
        },
        EditJson::RequestExtension {
            id,
            of,
            due,
            justification,
        } => Edit::RequestExtension {
            id: parse("id", &id)?,
            of: parse("of", &of)?,
            due: parse("due", &due)?,
            justification,
        },
        EditJson::GrantExtension { request } => Edit::GrantExtension {
            request: parse("request", &request)?,
        },
        EditJson::RefuseExtension { request, reason } => Edit::RefuseExtension {
            request: parse("request", &request)?,
            reason,
        },
        EditJson::SetVerification { note, on } => Edit::SetVerification {
            note,
            on: parse("on", &on)?,
        },
        EditJson::AttachNcEvidence { of, file } => Edit::AttachNcEvidence {
            of: parse("of", &of)?,
            file: file.into_evidence()?,
        },
        EditJson::Move { mv, note } => Edit::Move { mv, note },
        EditJson::CreateReview { unit, title } => Edit::CreateReview {
            unit: parse("unit", &unit)?,
            title,
        },
        EditJson::SetMinutes { text } => Edit::SetMinutes(text),
        EditJson::HoldReview { on } => Edit::HoldReview(parse("on", &on)?),
        EditJson::AddDecision { text } => Edit::AddDecision(text),
    })
}

fn evidence_list(items: Vec<EvidenceJson>) -> Result<Vec<Evidence>, GlueError> {
    items.into_iter().map(EvidenceJson::into_evidence).collect()
}

#[cfg(test)]
mod tests {
    use sync_core::audit::{Answer, Cpna};

    use super::*;

    #[test]
    fn edits_map_onto_sync_core_edits() -> Result<(), GlueError> {
        let e = parse_edit(
            r#"{"edit":"set_response","key":"sd.timeliness@P03","answer":{"cpna":"partly"},"note":"19 days"}"#,
        )?;
        let Edit::SetResponse { key, answer, .. } = e else {
            panic!("not a response: {e:?}");
        };
        assert_eq!(key.to_string(), "sd.timeliness@P03");
        assert_eq!(answer, Answer::Cpna(Cpna::Partly));
        assert_eq!(
            parse_edit(r#"{"edit":"move","move":"raise"}"#)?,
            Edit::Move {
                mv: "raise".into(),
                note: String::new()
            }
        );
        Ok(())
    }

    #[test]
    fn bad_edits_name_what_is_wrong() {
        let cases = [
            (r#"{"edit":"teleport"}"#, "unknown variant `teleport`"),
            (r#"{"edit":"set_notes"}"#, "missing field `text`"),
            (
                r#"{"edit":"set_notes","text":"x","extra":1}"#,
                "unknown field `extra`",
            ),
            (
                r#"{"edit":"clear_response","key":"Bad Key"}"#,
                "key: 'Bad Key'",
            ),
            (
                r#"{"edit":"set_response","key":"a.b","answer":{"cpna":"yes"}}"#,
                "answer: 'yes'",
            ),
            (
                r#"{"edit":"extend","of":"later","due":"2026-01-01","justification":""}"#,
                "of: 'later'",
            ),
            (
                r#"{"edit":"set_verification","note":"n","on":"15-01-2026"}"#,
                "on: '15-01-2026'",
            ),
        ];
        for (json, expect) in cases {
            match parse_edit(json) {
                Ok(e) => panic!("{json} parsed as {e:?}"),
                Err(e) => assert!(e.to_string().contains(expect), "{json}: {e}"),
            }
        }
    }

    #[test]
    fn targets_name_a_field_or_a_move() -> Result<(), GlueError> {
        assert_eq!(
            parse_target(r#"{"field":"nc_owner_fields"}"#)?,
            OwnedTarget::Field(Field::NcOwnerFields)
        );
        assert_eq!(
            parse_target(r#"{"move":"raise"}"#)?.as_target(),
            Target::Move("raise")
        );
        assert!(parse_target(r#"{"field":"header"}"#).is_err());
        Ok(())
    }
}
