//! A realistic day of audit work, as edits: the lead starts the audit, goes
//! through the checklist answering items (3.2.1 items once per process in
//! scope), records findings where something falls short, keeps the meeting
//! notes, revisits answers, and submits the audit for review; the partner
//! answers a few items and adds an observation at the same time.

use anyhow::{Context, Result};
use serde_json::Value;
use sha2::{Digest, Sha256};
use sync_core::audit::{Answer, Cpna, Evidence, FindingClass, YesNo};
use sync_core::date::{Date, Timestamp};
use sync_core::edit::Edit;
use sync_core::ids::{ClauseKey, ItemId, ProcessCode, ResponseKey};

use crate::db::accounts::hex;
use crate::db::now_ms;

/// Whether `edits` answer everything `rules` require before review.
fn complete(rules: &sync_core::checklist::Checklist, edits: &[Edit]) -> Result<bool> {
    let mut given = std::collections::BTreeMap::new();
    for e in edits {
        if let Edit::SetResponse {
            key,
            answer,
            note,
            evidence,
        } = e
        {
            let response = sync_core::audit::Response {
                answer: answer.clone(),
                note: note.clone(),
                evidence: evidence.clone(),
                by: "load".parse()?,
                at: Timestamp(0),
            };
            given.insert(key.clone(), response);
        }
    }
    Ok(rules.gaps(&given).is_empty())
}

/// One checklist response an auditor can give.
#[derive(Clone, Debug)]
pub struct Item {
    key: ResponseKey,
    response_type: String,
    clause: Option<ClauseKey>,
    process: Option<ProcessCode>,
}

/// The responses of an audit of the load scope.
#[derive(Clone, Debug)]
pub struct Checklist {
    items: Vec<Item>,
}

impl Checklist {
    /// Reads the template and the processes from a reference bundle.
    pub fn from_bundle(bundle: &Value, version: i64, scope: &[String]) -> Result<Checklist> {
        let template = bundle["templates"]
            .as_array()
            .and_then(|ts| ts.iter().find(|t| t["version"].as_i64() == Some(version)))
            .with_context(|| format!("the server has no checklist template version {version}"))?;
        let clause_of = |code: &str| {
            bundle["processes"].as_array().and_then(|ps| {
                ps.iter()
                    .find(|p| p["code"].as_str() == Some(code))
                    .and_then(|p| p["clause"].as_str())
                    .map(str::to_owned)
            })
        };
        let mut items = Vec::new();
        for t in template["items"].as_array().into_iter().flatten() {
            let key = t["key"].as_str().context("an item without a key")?;
            let clause = t["clause"].as_str().unwrap_or_default();
            let response_type = t["response_type"].as_str().unwrap_or("cpna").to_owned();
            if t["per_process"].as_bool() == Some(true) {
                for code in scope {
                    let Some(pc) = clause_of(code).filter(|c| c.starts_with(clause)) else {
                        continue;
                    };
                    items.push(Item {
                        key: format!("{key}@{code}").parse()?,
                        response_type: response_type.clone(),
                        clause: Some(pc.parse()?),
                        process: Some(code.parse()?),
                    });
                }
            } else {
                items.push(Item {
                    key: key.parse()?,
                    response_type,
                    clause: (!clause.is_empty()).then(|| clause.parse()).transpose()?,
                    process: None,
                });
            }
        }
        anyhow::ensure!(!items.is_empty(), "the checklist template has no items");
        Ok(Checklist { items })
    }

    /// A response for the live phase.
    pub fn live_edit(&self, sample: usize) -> Edit {
        let item = &self.items[sample % self.items.len()];
        Edit::SetResponse {
            key: item.key.clone(),
            answer: Answer::Cpna(Cpna::Conform),
            note: format!("Live check {sample}: seen again on the counter, in order."),
            evidence: Vec::new(),
        }
    }

    /// The lead's day on one audit: `n` edits, the last of them submitting
    /// the audit for review when the lead's answers complete its checklist
    /// (`rules`, as the server resolved it), or one more answer when not.
    pub fn lead_day(
        &self,
        seed: u64,
        n: usize,
        rules: &sync_core::checklist::Checklist,
    ) -> Result<Vec<Edit>> {
        let mut rng = Rng(seed);
        let mut edits = vec![Edit::Move {
            mv: "start".into(),
            note: "Opening meeting held; team and scope confirmed.".into(),
        }];
        let body = n.saturating_sub(2);
        let mut notes = String::from("Opening meeting with the process owners at 10:00.");
        let mut findings = 0;
        let mut i = 0;
        while edits.len() < body + 1 {
            let item = &self.items[i % self.items.len()];
            let revisit = i >= self.items.len();
            let (answer, short) = answer(item, &mut rng, revisit, i);
            let evidence = if answer == Answer::Photo {
                vec![photo(&item.key.to_string(), &mut rng)?]
            } else {
                Vec::new()
            };
            edits.push(Edit::SetResponse {
                key: item.key.clone(),
                answer,
                note: note(&mut rng, revisit),
                evidence,
            });
            if short
                && findings < 6
                && edits.len() < body + 1
                && let Some(clause) = &item.clause
            {
                findings += 1;
                edits.push(finding(
                    &format!("f-{findings:02}"),
                    &mut rng,
                    clause,
                    item,
                )?);
            }
            if i % 15 == 14 && edits.len() < body + 1 {
                notes.push_str(&format!(
                    "\n{}:{:02} reviewed {} files with the dealing assistant; records produced on request.",
                    11 + i / 15,
                    rng.next() % 60,
                    3 + rng.next() % 10
                ));
                edits.push(Edit::SetNotes(notes.clone()));
            }
            i += 1;
        }
        edits.truncate(body + 1);
        if n >= 2 {
            if complete(rules, &edits)? {
                edits.push(Edit::Move {
                    mv: "submit_for_review".into(),
                    note: "Fieldwork complete.".into(),
                });
            } else {
                edits.push(self.live_edit(i));
            }
        }
        edits.truncate(n);
        Ok(edits)
    }

    /// The partner's edits on an audit it is a member of: `n` of them.
    pub fn partner_day(&self, seed: u64, n: usize, who: usize) -> Result<Vec<Edit>> {
        let mut rng = Rng(seed ^ 0x9e37_79b9);
        let mut edits = Vec::with_capacity(n);
        for k in 0..n {
            let item = &self.items[(rng.next() as usize) % self.items.len()];
            if k % 3 == 1
                && let Some(clause) = &item.clause
            {
                edits.push(finding(
                    &format!("f-m{who:03}-{k}"),
                    &mut rng,
                    clause,
                    item,
                )?);
                continue;
            }
            let (answer, _) = answer(item, &mut rng, false, k);
            edits.push(Edit::SetResponse {
                key: item.key.clone(),
                answer,
                note: format!("Second check by the team member: {}", note(&mut rng, false)),
                evidence: Vec::new(),
            });
        }
        Ok(edits)
    }
}

/// SplitMix64: a small deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// An answer of the item's type, and whether it falls short.
fn answer(item: &Item, rng: &mut Rng, revisit: bool, i: usize) -> (Answer, bool) {
    let r = rng.next();
    match item.response_type.as_str() {
        "yn" => {
            let no = r.is_multiple_of(5);
            (Answer::YesNo(if no { YesNo::No } else { YesNo::Yes }), no)
        }
        "number" => (Answer::Number((r % 40) as i64), false),
        "text" => (Answer::Text(note(rng, revisit)), false),
        "date" => {
            let today = Date::in_offices(Timestamp(now_ms()));
            (Answer::Date(today.add_days(-((r % 300) as i32))), false)
        }
        "photo" => (Answer::Photo, false),
        _ => {
            let c = match (revisit, r % 10) {
                (true, _) | (false, 0..=5) => Cpna::Conform,
                (false, 6) => Cpna::NotApplicable,
                (false, 7 | 8) => Cpna::Partly,
                _ => Cpna::NotConform,
            };
            let short = matches!(c, Cpna::Partly | Cpna::NotConform) && i.is_multiple_of(2);
            (Answer::Cpna(c), short)
        }
    }
}

fn note(rng: &mut Rng, revisit: bool) -> String {
    const NOTES: &[&str] = &[
        "Checked the register for the last quarter; entries complete and signed.",
        "Sampled files from the dak register; two without the date of receipt.",
        "Displayed at the facilitation centre in English and Hindi.",
        "Office order seen; contact details on the notice board are current.",
        "SOP at the point of use is revision 3; master list shows revision 4.",
        "Timelines met in the sampled cases; one interim reply sent late.",
        "Training attendance sheets produced for two of the three sessions.",
        "Records retrieved within ten minutes from the record room.",
    ];
    let r = rng.next();
    let base = NOTES[(r % NOTES.len() as u64) as usize];
    if revisit {
        format!("Revisited after the documents were produced: {base}")
    } else {
        format!("{base} Files seen: {}.", 5 + r % 20)
    }
}

fn finding(id: &str, rng: &mut Rng, clause: &ClauseKey, item: &Item) -> Result<Edit> {
    let class = match rng.next() % 6 {
        0 => FindingClass::Major,
        1 | 2 => FindingClass::Minor,
        3 | 4 => FindingClass::Observation,
        _ => FindingClass::Ofi,
    };
    let photo = photo(id, rng)?;
    Ok(Edit::PutFinding {
        id: id.parse::<ItemId>()?,
        class,
        clause: clause.clone(),
        process: item.process.clone(),
        text: format!(
            "{}: shortfall seen against item {}; {} of the sampled cases affected.",
            clause,
            item.key,
            1 + rng.next() % 4
        ),
        evidence: vec![photo],
    })
}

/// A photo taken on the tablet (its bytes travel as a blob, not in the document).
fn photo(tag: &str, rng: &mut Rng) -> Result<Evidence> {
    Ok(Evidence {
        sha256: hex(&Sha256::digest(format!("{tag}/{}", rng.next()).as_bytes())).parse()?,
        name: format!("IMG_{}.jpg", 1000 + rng.next() % 9000),
        mime: "image/jpeg".into(),
        size: 150_000 + rng.next() % 2_000_000,
        taken_at: Some(Timestamp(now_ms())),
    })
}
