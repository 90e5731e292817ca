//! The checklist's own rules (SQM 4.3, `checklist-template.md`): which items
//! an audit must answer, which need objective evidence for a shortfall, and
//! which are required only when another answer calls for them.
//!
//! A template version lists items by stable key. [`Checklist::resolve`]
//! turns it into the items one audit answers, from the audit's scope: an
//! item of a clause applies when that clause, or a process of it, is in
//! scope; an item answered per process (clause 3.2.1) applies once per
//! 3.2.1.x process in scope, as `<key>@<process>`; an item with no clause
//! applies to every audit. [`Checklist::gaps`] says what still stands in
//! the way of submitting the audit for review; the validator refuses the
//! move while any remains, and the tablet shows the same list.

use std::collections::BTreeMap;
use std::fmt;

use crate::audit::{Answer, Response};
use crate::ids::{ItemKey, ProcessCode, ResponseKey};

/// When an item must be answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Required {
    /// Always, before the audit goes to review.
    Always,
    /// Never: answered when the auditor has something to record.
    Optional,
    /// Only when the answer to another item (of the same process, for
    /// items answered per process) is one of these stored values.
    When {
        /// The item whose answer decides.
        item: ItemKey,
        /// The stored answer values that make this item required, e.g. `not_conform`.
        answers: Vec<String>,
    },
}

/// One item of a template version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateItem {
    /// The stable key, e.g. `sd.timeliness`.
    pub key: ItemKey,
    /// The clause as printed in the manual ("" for general items).
    pub clause: String,
    /// The answer type: cpna, yn, text, number, date or photo.
    pub answer: String,
    /// Whether a shortfall (partly, not conform, no) needs objective evidence.
    pub evidence: bool,
    /// Whether it is answered once per process in scope.
    pub per_process: bool,
    /// When it must be answered.
    pub required: Required,
}

/// What one audit's checklist asks of one response key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct ItemRule {
    /// The answer type.
    pub answer: String,
    /// Whether a shortfall needs objective evidence.
    pub evidence: bool,
    /// When it must be answered (a condition names a response key of this audit).
    pub required: Condition,
}

/// When a response key must be answered, resolved for one audit (in JSON:
/// `"always"`, `"optional"` or `{"when": ["grv.ack", ["not_conform"]]}`).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Condition {
    /// Always.
    Always,
    /// Never.
    Optional,
    /// When that response's stored answer value is one of these.
    When(ResponseKey, Vec<String>),
}

/// The checklist of one audit: its pinned template version resolved for its scope.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct Checklist {
    /// The template version.
    pub version: u64,
    /// Every response key the audit may answer, with its rule.
    pub items: BTreeMap<ResponseKey, ItemRule>,
}

/// Something that keeps an audit from going to review.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Gap {
    /// A required item has no answer.
    Unanswered(ResponseKey),
    /// An item that needs evidence for a shortfall was answered short with
    /// neither a note nor a file.
    NeedsEvidence(ResponseKey),
}

impl Gap {
    /// The response key concerned.
    pub fn key(&self) -> &ResponseKey {
        match self {
            Gap::Unanswered(k) | Gap::NeedsEvidence(k) => k,
        }
    }
}

impl fmt::Display for Gap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Gap::Unanswered(k) => write!(f, "{k} is not answered"),
            Gap::NeedsEvidence(k) => write!(f, "{k} needs objective evidence"),
        }
    }
}

impl Checklist {
    /// The items of template `version` that an audit of `scope` (process
    /// codes and clauses) answers; `clause_of` gives a process's clause.
    pub fn resolve(
        version: u64,
        template: &[TemplateItem],
        scope: &[String],
        clause_of: impl Fn(&ProcessCode) -> Option<String>,
    ) -> Checklist {
        let processes: Vec<(ProcessCode, String)> = scope
            .iter()
            .filter_map(|s| s.parse::<ProcessCode>().ok())
            .filter_map(|p| clause_of(&p).map(|c| (p, c)))
            .collect();
        let in_scope = |clause: &str| {
            scope.iter().any(|s| s == clause) || processes.iter().any(|(_, c)| c == clause)
        };
        let mut items = BTreeMap::new();
        for t in template {
            let rule = |process: Option<&ProcessCode>| ItemRule {
                answer: t.answer.clone(),
                evidence: t.evidence,
                required: match &t.required {
                    Required::Always => Condition::Always,
                    Required::Optional => Condition::Optional,
                    Required::When { item, answers } => {
                        let same_process = template
                            .iter()
                            .any(|other| &other.key == item && other.per_process);
                        let process = process.filter(|_| same_process).cloned();
                        Condition::When(ResponseKey::new(item.clone(), process), answers.clone())
                    }
                },
            };
            if t.per_process {
                let prefix = format!("{}.", t.clause);
                for (p, c) in &processes {
                    if c.starts_with(&prefix) || *c == t.clause {
                        items.insert(
                            ResponseKey::new(t.key.clone(), Some(p.clone())),
                            rule(Some(p)),
                        );
                    }
                }
            } else if t.clause.is_empty() || in_scope(&t.clause) {
                items.insert(ResponseKey::new(t.key.clone(), None), rule(None));
            }
        }
        Checklist { version, items }
    }

    /// What still keeps an audit with these responses from going to review,
    /// in key order: required items unanswered, and shortfalls on items that
    /// need evidence recorded with neither a note nor a file (objective
    /// evidence is a note, a sampled record or a photo).
    pub fn gaps(&self, responses: &BTreeMap<ResponseKey, Response>) -> Vec<Gap> {
        let mut gaps = Vec::new();
        for (key, rule) in &self.items {
            match responses.get(key) {
                None => {
                    let required = match &rule.required {
                        Condition::Always => true,
                        Condition::Optional => false,
                        Condition::When(other, answers) => responses
                            .get(other)
                            .is_some_and(|r| answers.contains(&r.answer.value_text())),
                    };
                    if required {
                        gaps.push(Gap::Unanswered(key.clone()));
                    }
                }
                Some(r) => {
                    if rule.evidence
                        && r.answer.is_shortfall()
                        && r.note.trim().is_empty()
                        && r.evidence.is_empty()
                    {
                        gaps.push(Gap::NeedsEvidence(key.clone()));
                    }
                }
            }
        }
        gaps
    }

    /// The rule of one response key, if the audit's checklist has it.
    pub fn rule(&self, key: &ResponseKey) -> Option<&ItemRule> {
        self.items.get(key)
    }
}

impl Answer {
    /// The value as stored, e.g. `not_conform` (what a [`Required::When`] names).
    pub fn value_text(&self) -> String {
        self.encode().1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(key: &str, clause: &str, per_process: bool, required: Required) -> TemplateItem {
        TemplateItem {
            key: key.parse().expect("a key"),
            clause: clause.into(),
            answer: "cpna".into(),
            evidence: false,
            per_process,
            required,
        }
    }

    fn clause_of(p: &ProcessCode) -> Option<String> {
        match p.as_str() {
            "P03" => Some("3.2.1.3".into()),
            "P04" => Some("3.2.1.4".into()),
            "P08" => Some("3.2.3".into()),
            _ => None,
        }
    }

    fn keys(c: &Checklist) -> Vec<String> {
        c.items.keys().map(ToString::to_string).collect()
    }

    #[test]
    fn an_item_applies_when_its_clause_or_a_process_of_it_is_in_scope() {
        let template = [
            item("chr.display", "2.2", false, Required::Always),
            item("sd.timeliness", "3.2.1", true, Required::Always),
            item("cmp.timeline", "3.2.3", false, Required::Always),
            item("mr.held", "3.4", false, Required::Always),
            item("gen.remarks", "", false, Required::Optional),
        ];
        let scope: Vec<String> = ["P03", "P04", "P08", "3.4"].map(String::from).to_vec();
        let c = Checklist::resolve(2, &template, &scope, clause_of);
        assert_eq!(
            keys(&c),
            [
                "cmp.timeline",
                "gen.remarks",
                "mr.held",
                "sd.timeliness@P03",
                "sd.timeliness@P04"
            ]
        );
    }

    #[test]
    fn a_condition_on_an_item_answered_per_process_reads_the_same_process() {
        let template = [
            item("sd.timeliness", "3.2.1", true, Required::Always),
            item(
                "sd.late_cases",
                "3.2.1",
                true,
                Required::When {
                    item: "sd.timeliness".parse().expect("a key"),
                    answers: vec!["partly".into()],
                },
            ),
            item("mgt.nodal", "3.1", false, Required::Always),
            item(
                "sd.checks",
                "3.2.1",
                true,
                Required::When {
                    item: "mgt.nodal".parse().expect("a key"),
                    answers: vec!["no".into()],
                },
            ),
        ];
        let scope: Vec<String> = vec!["P03".into(), "P04".into(), "3.1".into()];
        let c = Checklist::resolve(1, &template, &scope, clause_of);
        // An item answered per process may depend on one answered once: that one's own key.
        assert_eq!(
            c.items[&"sd.checks@P03".parse().expect("a key")].required,
            Condition::When("mgt.nodal".parse().expect("a key"), vec!["no".into()])
        );
        assert_eq!(
            c.items[&"sd.late_cases@P04".parse().expect("a key")].required,
            Condition::When(
                "sd.timeliness@P04".parse().expect("a key"),
                vec!["partly".into()]
            )
        );
    }
}
