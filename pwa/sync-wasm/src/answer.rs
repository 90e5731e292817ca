//! Checklist answers and evidence references, in the same JSON shape both
//! ways: as edits send them and as views show them.

use serde::{Deserialize, Serialize};
use sync_core::audit::{Answer, Cpna, Evidence, YesNo};

use crate::error::{GlueError, parse, parse_opt};

/// A checklist answer: `{"cpna": "conform|partly|not_conform|na"}`, `{"yn": "yes|no|na"}`,
/// `{"text": "..."}`, `{"number": 3}`, `{"date": "2026-01-15"}` or `"photo"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum AnswerJson {
    Cpna(String),
    Yn(String),
    Text(String),
    Number(i64),
    Date(String),
    Photo,
}

/// A photo or scan reference (the blob travels outside the document).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EvidenceJson {
    sha256: String,
    name: String,
    mime: String,
    size: u64,
    #[serde(default)]
    taken_at: Option<String>,
}

impl EvidenceJson {
    pub(crate) fn into_evidence(self) -> Result<Evidence, GlueError> {
        Ok(Evidence {
            sha256: parse("evidence sha256", &self.sha256)?,
            name: self.name,
            mime: self.mime,
            size: self.size,
            taken_at: parse_opt("evidence taken_at", self.taken_at.as_deref())?,
        })
    }

    pub(crate) fn of(e: &Evidence) -> EvidenceJson {
        EvidenceJson {
            sha256: e.sha256.to_string(),
            name: e.name.clone(),
            mime: e.mime.clone(),
            size: e.size,
            taken_at: e.taken_at.map(|t| t.to_string()),
        }
    }
}

/// The stored names of the answers, as sync-core writes them.
const CPNA: [(Cpna, &str); 4] = [
    (Cpna::Conform, "conform"),
    (Cpna::Partly, "partly"),
    (Cpna::NotConform, "not_conform"),
    (Cpna::NotApplicable, "na"),
];

const YES_NO: [(YesNo, &str); 3] = [
    (YesNo::Yes, "yes"),
    (YesNo::No, "no"),
    (YesNo::NotApplicable, "na"),
];

fn by_name<T: Copy>(table: &[(T, &str)], name: &str, rule: &str) -> Result<T, GlueError> {
    table
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(v, _)| *v)
        .ok_or_else(|| GlueError::input("answer", format!("'{name}' is not {rule}")))
}

fn name_of<T: PartialEq>(table: &[(T, &str)], value: &T) -> String {
    table
        .iter()
        .find(|(v, _)| v == value)
        .map_or("", |(_, n)| *n)
        .to_owned()
}

impl AnswerJson {
    pub(crate) fn into_answer(self) -> Result<Answer, GlueError> {
        Ok(match self {
            AnswerJson::Cpna(v) => {
                Answer::Cpna(by_name(&CPNA, &v, "conform, partly, not_conform or na")?)
            }
            AnswerJson::Yn(v) => Answer::YesNo(by_name(&YES_NO, &v, "yes, no or na")?),
            AnswerJson::Text(t) => Answer::Text(t),
            AnswerJson::Number(n) => Answer::Number(n),
            AnswerJson::Date(d) => Answer::Date(parse("answer date", &d)?),
            AnswerJson::Photo => Answer::Photo,
        })
    }

    pub(crate) fn of(answer: &Answer) -> AnswerJson {
        match answer {
            Answer::Cpna(c) => AnswerJson::Cpna(name_of(&CPNA, c)),
            Answer::YesNo(y) => AnswerJson::Yn(name_of(&YES_NO, y)),
            Answer::Text(t) => AnswerJson::Text(t.clone()),
            Answer::Number(n) => AnswerJson::Number(*n),
            Answer::Date(d) => AnswerJson::Date(d.to_string()),
            Answer::Photo => AnswerJson::Photo,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_answer_form_round_trips_through_json() -> Result<(), GlueError> {
        for json in [
            r#"{"cpna":"not_conform"}"#,
            r#"{"yn":"na"}"#,
            r#"{"text":"seen"}"#,
            r#"{"number":12}"#,
            r#"{"date":"2026-01-15"}"#,
            r#""photo""#,
        ] {
            let dto: AnswerJson =
                serde_json::from_str(json).map_err(|e| GlueError::input(json, e))?;
            let answer = dto.into_answer()?;
            let back = serde_json::to_string(&AnswerJson::of(&answer))
                .map_err(|e| GlueError::input(json, e))?;
            assert_eq!(back, json);
        }
        Ok(())
    }
}
