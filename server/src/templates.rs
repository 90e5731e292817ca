//! Checklist templates as data (issue 15): a new version of the checklist is
//! published from a JSON file, with no change to the code, by `sqm template
//! publish FILE` or `POST /api/v1/admin/templates`. The file's format is
//! `templates/sqm-03-v2.json`'s:
//!
//! ```json
//! { "version": 2, "manual_issue": "SQM-03", "published_on": "2025-10-01",
//!   "note": "what changed",
//!   "amendment": { "id": "A-01", "issued_on": "2025-10-01",
//!                  "authority": "DG Taxpayer Services", "note": "..." },
//!   "items": [ { "key": "sd.timeliness", "clause": "3.2.1", "question": "...",
//!                "type": "cpna", "evidence": true, "per_process": true,
//!                "required": true } ] }
//! ```
//!
//! `required` is `true` (the default), `false`, or `{"when": "<item key>",
//! "answers": ["not_conform"]}` (required only when that item's answer is one
//! of those). Every mistake is reported with the line it is on. A published
//! version never changes; audits keep the version they pinned.

use serde::Deserialize;
use serde_json::Value;
use sync_core::ids::ItemKey;
use sync_core::text;

use crate::db::reference::{self, Amendment, Template, TemplateItem};
use crate::db::{Db, DbError};

/// The largest template file, in bytes.
pub const MAX_FILE: usize = 512 * 1024;
/// The most items in one version.
pub const MAX_ITEMS: usize = 1000;
/// The longest question or note, in characters.
pub const MAX_TEXT: usize = 2000;

/// The answer types an item may have.
pub const TYPES: &[&str] = &["cpna", "yn", "text", "number", "date", "photo"];

/// One mistake in a template file, at a line (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mistake {
    /// The line it is on.
    pub line: usize,
    /// What is wrong, in words.
    pub message: String,
}

impl std::fmt::Display for Mistake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// Why a template was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The file has mistakes: all of them, by line.
    #[error("the template has {} mistake(s)", .0.len())]
    Invalid(Vec<Mistake>),
    /// The version is published already.
    #[error("checklist version {0} is published already")]
    Exists(i64),
    /// The amendment is recorded already, with another version.
    #[error("amendment {0} is recorded already")]
    AmendmentExists(String),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
}

/// A template file, read and checked: what [`publish`] stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    /// The version with its items.
    pub template: Template,
    /// The amendment it implements, if any.
    pub amendment: Option<Amendment>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: i64,
    manual_issue: String,
    published_on: String,
    #[serde(default)]
    note: String,
    #[serde(default)]
    amendment: Option<AmendmentFile>,
    items: Vec<ItemFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AmendmentFile {
    id: String,
    issued_on: String,
    authority: String,
    #[serde(default)]
    note: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ItemFile {
    key: String,
    clause: String,
    question: String,
    #[serde(rename = "type")]
    answer: String,
    #[serde(default)]
    evidence: bool,
    #[serde(default)]
    per_process: bool,
    #[serde(default = "always")]
    required: Value,
}

fn always() -> Value {
    Value::Bool(true)
}

/// The stored values an answer of `answer` type can have (what a condition may name).
fn values_of(answer: &str) -> &'static [&'static str] {
    match answer {
        "cpna" => &["conform", "partly", "not_conform", "na"],
        "yn" => &["yes", "no", "na"],
        _ => &[],
    }
}

/// The byte offset of the `n`th (0-based) item whose `"key"` is `value`.
fn item_at(text: &str, value: &str, n: usize) -> Option<usize> {
    let needle = format!("\"{value}\"");
    let mut seen = 0;
    let mut from = 0;
    while let Some(at) = text[from..].find(&needle) {
        let at = from + at;
        let before = text[..at].trim_end();
        if let Some(b) = before.strip_suffix(':')
            && b.trim_end().ends_with("\"key\"")
        {
            if seen == n {
                return Some(at);
            }
            seen += 1;
        }
        from = at + needle.len();
    }
    None
}

/// The line (1-based) of a byte offset.
fn line_at(text: &str, at: usize) -> usize {
    text[..at].matches('\n').count() + 1
}

/// The line of field `field` of the `n`th item keyed `key` (the key's own
/// line when the field is not written out), or 1.
fn item_line(text: &str, key: &str, n: usize, field: &str) -> usize {
    let Some(at) = item_at(text, key, n) else {
        return 1;
    };
    // The item's text: from its opening brace to the next item's.
    let start = text[..at].rfind('{').unwrap_or(at);
    let end = text[at..].find('}').map_or(text.len(), |e| at + e);
    match text[start..end].find(&format!("\"{field}\"")) {
        Some(f) => line_at(text, start + f),
        None => line_at(text, at),
    }
}

fn is_clause(s: &str) -> bool {
    s.is_empty()
        || (s.len() <= 16
            && s.split('.')
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())))
}

fn is_date(s: &str) -> bool {
    s.parse::<sync_core::date::Date>().is_ok()
}

/// Reads and checks a template file; every mistake, each with its line.
pub fn parse(text: &str) -> Result<Parsed, Vec<Mistake>> {
    if text.len() > MAX_FILE {
        return Err(vec![Mistake {
            line: 1,
            message: format!(
                "the file is {} bytes; a template may be at most {MAX_FILE} bytes",
                text.len()
            ),
        }]);
    }
    let file: File = serde_json::from_str(text).map_err(|e| {
        vec![Mistake {
            line: e.line().max(1),
            message: text::scrub(e.to_string()),
        }]
    })?;
    let mut mistakes = Vec::new();
    let mut top = |message: String| mistakes.push(Mistake { line: 1, message });
    if file.version < 1 {
        top(format!(
            "version: {} is not a version number (1 or more)",
            file.version
        ));
    }
    if file.manual_issue.is_empty()
        || file.manual_issue.len() > 32
        || text::forbidden(&file.manual_issue, false).is_some()
    {
        top("manual_issue: give the manual issue's id, e.g. SQM-03".into());
    }
    if !is_date(&file.published_on) {
        top("published_on: give the date as YYYY-MM-DD".into());
    }
    if file.note.chars().count() > MAX_TEXT || text::forbidden(&file.note, true).is_some() {
        top(format!(
            "note: at most {MAX_TEXT} characters, with no control characters"
        ));
    }
    if let Some(a) = &file.amendment {
        if a.id.is_empty()
            || a.id.len() > 32
            || !a
                .id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        {
            top("amendment.id: 1 to 32 letters, digits, '-' or '.', e.g. A-01".into());
        }
        if !is_date(&a.issued_on) {
            top("amendment.issued_on: give the date as YYYY-MM-DD".into());
        }
        if a.authority.trim().is_empty()
            || a.authority.chars().count() > 200
            || text::forbidden(&a.authority, false).is_some()
        {
            top("amendment.authority: name the issuing authority (at most 200 characters)".into());
        }
        if a.note.chars().count() > MAX_TEXT || text::forbidden(&a.note, true).is_some() {
            top(format!(
                "amendment.note: at most {MAX_TEXT} characters, with no control characters"
            ));
        }
    }
    if file.items.is_empty() || file.items.len() > MAX_ITEMS {
        top(format!("items: list 1 to {MAX_ITEMS} items"));
    }

    let mut seen: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut items = Vec::new();
    for item in &file.items {
        let n = seen.entry(item.key.as_str()).or_default();
        let nth = *n;
        *n += 1;
        let mut wrong = |field: &str, message: String| {
            mistakes.push(Mistake {
                line: item_line(text, &item.key, nth, field),
                message: format!("item '{}': {message}", text::quote(&item.key)),
            })
        };
        if nth > 0 {
            wrong(
                "key",
                "the key is used by an earlier item; keys are unique in a version".into(),
            );
        }
        if let Err(e) = item.key.parse::<ItemKey>() {
            wrong("key", format!("key: {e}"));
        }
        if !is_clause(&item.clause) {
            wrong(
                "clause",
                "clause: give it as printed in the manual, e.g. 3.2.1, or \"\"".into(),
            );
        }
        if item.question.trim().is_empty()
            || item.question.chars().count() > MAX_TEXT
            || text::forbidden(&item.question, false).is_some()
        {
            wrong(
                "question",
                format!(
                    "question: 1 to {MAX_TEXT} characters on one line, with no control characters"
                ),
            );
        }
        if !TYPES.contains(&item.answer.as_str()) {
            wrong(
                "type",
                format!(
                    "type: '{}' is not one of {}",
                    text::quote(&item.answer),
                    TYPES.join(", ")
                ),
            );
        }
        if item.per_process && item.clause.is_empty() {
            wrong(
                "per_process",
                "per_process: an item answered per process needs a clause".into(),
            );
        }
        let (required, required_item, required_answers) = match &item.required {
            Value::Bool(true) => ("always", None, Vec::new()),
            Value::Bool(false) => ("optional", None, Vec::new()),
            Value::Object(o) => {
                let when = o.get("when").and_then(Value::as_str).unwrap_or_default();
                let answers: Vec<String> = o
                    .get("answers")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .map(|v| v.as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                let other = file.items.iter().find(|i| i.key == when);
                if o.keys().any(|k| k != "when" && k != "answers") {
                    wrong(
                        "required",
                        "required: give only \"when\" and \"answers\"".into(),
                    );
                }
                match other {
                    None => wrong(
                        "required",
                        format!(
                            "required.when: '{}' is not an item of this version",
                            text::quote(when)
                        ),
                    ),
                    Some(o) if o.key == item.key => wrong(
                        "required",
                        "required.when: an item cannot depend on itself".into(),
                    ),
                    Some(o) => {
                        let allowed = values_of(&o.answer);
                        if answers.is_empty()
                            || answers.iter().any(|a| !allowed.contains(&a.as_str()))
                        {
                            wrong(
                                "required",
                                format!(
                                    "required.answers: list answers of '{}' from {}",
                                    text::quote(when),
                                    if allowed.is_empty() {
                                        "none (only cpna and yn items can decide)".to_owned()
                                    } else {
                                        allowed.join(", ")
                                    }
                                ),
                            );
                        }
                        if o.per_process && !item.per_process {
                            wrong(
                                "required",
                                "required.when: an item answered once cannot depend on one answered per process"
                                    .into(),
                            );
                        }
                    }
                }
                ("when", Some(when.to_owned()), answers)
            }
            _ => {
                wrong(
                    "required",
                    "required: give true, false or {\"when\": \"<item key>\", \"answers\": [...]}"
                        .into(),
                );
                ("always", None, Vec::new())
            }
        };
        items.push(TemplateItem {
            key: item.key.clone(),
            clause: item.clause.clone(),
            question: item.question.clone(),
            response_type: item.answer.clone(),
            evidence: item.evidence,
            per_process: item.per_process,
            required: required.to_owned(),
            required_item,
            required_answers,
        });
    }
    if !mistakes.is_empty() {
        mistakes.sort_by_key(|m| m.line);
        return Err(mistakes);
    }
    Ok(Parsed {
        amendment: file.amendment.map(|a| Amendment {
            id: a.id,
            manual_issue: file.manual_issue.clone(),
            issued_on: a.issued_on,
            authority: a.authority,
            note: a.note,
            template_version: file.version,
        }),
        template: Template {
            version: file.version,
            manual_issue: file.manual_issue,
            published_on: file.published_on,
            note: file.note,
            items,
        },
    })
}

/// Checks and publishes a template file, with the amendment it records, in
/// one transaction: the version (and the amendment) must be new.
pub async fn publish(db: &Db, text: &str, by: &str) -> Result<Parsed, PublishError> {
    let parsed = parse(text).map_err(PublishError::Invalid)?;
    let mut tx = db.begin().await?;
    if !reference::manual_issue_exists(&mut tx, &parsed.template.manual_issue).await? {
        return Err(PublishError::Invalid(vec![Mistake {
            line: line_of_field(text, "manual_issue"),
            message: format!(
                "manual_issue: '{}' is not a manual issue this server knows",
                text::quote(&parsed.template.manual_issue)
            ),
        }]));
    }
    if !reference::insert_template(&mut tx, &parsed.template).await? {
        return Err(PublishError::Exists(parsed.template.version));
    }
    if let Some(a) = &parsed.amendment
        && !reference::insert_amendment(&mut tx, a, by).await?
    {
        return Err(PublishError::AmendmentExists(a.id.clone()));
    }
    tx.commit().await.map_err(DbError::from)?;
    Ok(parsed)
}

/// The line of a top-level field's name.
fn line_of_field(text: &str, field: &str) -> usize {
    text.find(&format!("\"{field}\""))
        .map(|at| text[..at].matches('\n').count() + 1)
        .unwrap_or(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = include_str!("../../templates/sqm-03-v1.json");
    const V2: &str = include_str!("../../templates/sqm-03-v2.json");

    #[test]
    fn the_shipped_versions_read_whole() {
        let v1 = parse(V1).expect("v1 reads");
        assert_eq!(v1.template.items.len(), 48);
        assert!(v1.amendment.is_none());
        let v2 = parse(V2).expect("v2 reads");
        assert_eq!(v2.template.items.len(), 49);
        let a = v2.amendment.expect("v2 implements A-01");
        assert_eq!((a.id.as_str(), a.template_version), ("A-01", 2));
        let sample = v2
            .template
            .items
            .iter()
            .find(|i| i.key == "grv.sample")
            .expect("grv.sample");
        assert_eq!(sample.required, "when");
        assert_eq!(sample.required_item.as_deref(), Some("grv.ack"));
        assert_eq!(sample.required_answers, ["not_conform"]);
    }

    fn mistakes(text: &str) -> Vec<String> {
        parse(text)
            .expect_err("refused")
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn each_mistake_is_named_with_its_line() {
        let broken = V2
            .replacen("\"type\": \"cpna\"", "\"type\": \"stars\"", 1)
            .replacen("\"key\": \"grv.ack\"", "\"key\": \"grv.Ack\"", 1);
        let found = mistakes(&broken);
        let line = |key: &str, field: &str| item_line(&broken, key, 0, field);
        assert_eq!(
            found,
            [
                format!(
                    "line {}: item 'chr.display': type: 'stars' is not one of cpna, yn, text, number, date, photo",
                    line("chr.display", "type")
                ),
                format!(
                    "line {}: item 'grv.Ack': key: 'grv.Ack' is not a valid checklist item key: use lowercase words joined by dots, e.g. sd.timeliness",
                    line("grv.Ack", "key")
                ),
                format!(
                    "line {}: item 'grv.sample': required.when: 'grv.ack' is not an item of this version",
                    line("grv.sample", "required")
                ),
            ]
        );
        assert_eq!(
            line("chr.display", "type"),
            17,
            "the line of the type itself"
        );
    }

    #[test]
    fn a_duplicate_key_is_named_at_its_second_line() {
        let twice = V1.replacen("\"key\": \"chr.version\"", "\"key\": \"chr.display\"", 1);
        let found = mistakes(&twice);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(&format!(
                "line {}: item 'chr.display': the key is used",
                item_line(&twice, "chr.display", 1, "key")
            )),
            "{found:?}"
        );
    }

    #[test]
    fn broken_json_is_named_at_its_line() {
        let cut = &V2[..V2.len() / 2];
        let found = mistakes(cut);
        assert_eq!(found.len(), 1);
        assert!(
            found[0].starts_with(&format!("line {}:", cut.lines().count())),
            "{found:?}"
        );
    }

    #[test]
    fn a_condition_must_name_answers_its_item_can_have() {
        let bad = V2.replacen("\"not_conform\"\n", "\"never\"\n", 1);
        assert_ne!(bad, V2);
        let found = mistakes(&bad);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].contains(
                "required.answers: list answers of 'grv.ack' from conform, partly, not_conform, na"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn a_file_may_be_as_large_as_the_limit_and_not_one_byte_larger() {
        let pad = |n: usize| {
            let mut t = V1.trim_end().to_owned();
            t.push_str(&" ".repeat(n - t.len()));
            t
        };
        assert!(parse(&pad(MAX_FILE)).is_ok());
        let found = mistakes(&pad(MAX_FILE + 1));
        assert!(found[0].contains("at most 524288 bytes"), "{found:?}");
    }

    #[test]
    fn unknown_fields_are_refused_not_ignored() {
        let extra = V1.replacen("\"evidence\": true", "\"evidence\": true, \"weight\": 3", 1);
        let found = mistakes(&extra);
        assert!(found[0].contains("unknown field `weight`"), "{found:?}");
    }
}
