//! The demo's documents, made edit by edit through sync-core as their people
//! made them, on the dates the demo gives. The draft NC `D-IYER-01` exists
//! only on K. Iyer's tablet, so it is not stored: [`draft_on_iyers_tablet`]
//! makes it for the tablet's fixture (see `seed::tablet`).

use std::collections::BTreeMap;

use sync_core::audit::{Answer, AuditHeader, Cpna, Evidence, FindingClass, YesNo};
use sync_core::automerge::{Automerge, Change};
use sync_core::date::{Date, Timestamp};
use sync_core::edit::{Edit, apply_edit};
use sync_core::ids::DocumentId;
use sync_core::nc::{Action, DueKind, EvidenceOf, Nc, NcLink, Severity};
use sync_core::permissions::Author;

use super::{DEMO_UNIT, SeedError, demo_actor};
use crate::access;
use crate::db::accounts::hex;
use crate::db::documents::{self, Origin};
use crate::db::{Db, DbError, blobs, parse_col};
use crate::store;

/// An audit on the demo programme.
pub struct Planned {
    pub id: DocumentId,
    pub number: &'static str,
    pub scope: &'static [&'static str],
    pub from: &'static str,
    pub to: &'static str,
    pub template: i64,
    pub lead: &'static str,
    pub members: &'static [&'static str],
}

fn doc_id(day: &str, tag: u8) -> DocumentId {
    let ms = day
        .parse::<Date>()
        .map(|d| Timestamp::start_of(d).0)
        .unwrap_or(0);
    DocumentId::new_v7(ms, [0xde, 0x30, tag, tag, tag, tag, tag, tag, tag, tag])
}

/// The three audits of 2025-26 so far.
pub fn planned() -> [Planned; 3] {
    [
        Planned {
            id: doc_id("2025-07-14", 1),
            number: "IA/DEMO-I/2025-26/001",
            scope: &["P01", "P02", "P03", "P04", "P05", "2.2"],
            from: "2025-07-14",
            to: "2025-07-15",
            template: 1,
            lead: "k.iyer",
            members: &["p.sharma"],
        },
        Planned {
            id: doc_id("2025-07-22", 2),
            number: "IA/DEMO-I/2025-26/002",
            scope: &["P06", "P07", "P08", "P09", "P10", "3.3"],
            from: "2025-07-22",
            to: "2025-07-22",
            template: 1,
            lead: "p.sharma",
            members: &["s.khan"],
        },
        Planned {
            id: doc_id("2026-01-13", 3),
            number: "IA/DEMO-I/2025-26/003",
            scope: &["P03", "P04", "P08", "3.4"],
            from: "2026-01-13",
            to: "2026-01-14",
            template: 2,
            lead: "k.iyer",
            members: &["s.khan"],
        },
    ]
}

/// A time on a demo day (hours after midnight UTC).
fn at(day: &str, hour: i64) -> Timestamp {
    Timestamp(Timestamp::start_of(date(day)).0 + hour * 3_600_000)
}

/// A demo date (the literals above are valid dates; a typo would show as 1970).
fn date(day: &str) -> Date {
    day.parse().unwrap_or_else(|_| Date::of(Timestamp(0)))
}

/// Builds one document edit by edit.
struct Maker<'a> {
    authors: &'a BTreeMap<String, Author>,
    id: DocumentId,
    doc: Automerge,
    made: Vec<(String, Change)>,
    /// Files its evidence names, stored with it: (uploader, content).
    files: Vec<(String, Vec<u8>)>,
}

impl<'a> Maker<'a> {
    fn new(authors: &'a BTreeMap<String, Author>, id: DocumentId) -> Maker<'a> {
        Maker {
            authors,
            id,
            doc: Automerge::new(),
            made: Vec::new(),
            files: Vec::new(),
        }
    }

    /// `first` and `second` make their edits at the same time on tablets
    /// that had not seen each other's (both on the document as it is), and
    /// the two are merged, as two auditors answering offline would be.
    fn concurrently(
        &mut self,
        when: Timestamp,
        (first, a): (&str, Edit),
        (second, b): (&str, Edit),
    ) -> Result<&mut Self, SeedError> {
        let mut other = Maker {
            authors: self.authors,
            id: self.id,
            doc: self.doc.clone(),
            made: Vec::new(),
            files: Vec::new(),
        };
        other.edit(second, when, b)?;
        self.edit(first, when, a)?;
        self.doc
            .merge(&mut other.doc)
            .map_err(|e| DbError::Corrupt(format!("the demo's tablets do not merge: {e}")))?;
        self.made.extend(other.made);
        Ok(self)
    }

    /// `who` answers, one edit each, every item of the audit's checklist
    /// still standing between it and review, as found on the day: conform
    /// (yes for yes-no items), a sample of 10 for a sample count and 0 for
    /// another count, the fieldwork's first day for a date, a line for text.
    fn answer_rest(&mut self, who: &str, when: Timestamp) -> Result<&mut Self, SeedError> {
        let missing = |what: String| SeedError::Refused {
            what: format!("the checklist of {} for {who}", self.id),
            rule: "demo.checklist",
            message: what,
        };
        let plan = self
            .authors
            .get(who)
            .and_then(|a| a.planned.get(&self.id))
            .ok_or_else(|| missing("no planned audit".into()))?;
        let checklist = plan.checklist.clone();
        let view = sync_core::audit::AuditView::read(&self.doc)
            .map_err(|e| missing(format!("the audit does not read: {e}")))?;
        let start = view.header.start;
        let mut edits = Vec::new();
        for gap in checklist.gaps(&view.content.responses) {
            let sync_core::checklist::Gap::Unanswered(key) = gap else {
                return Err(missing(format!(
                    "{gap}: the demo gives every shortfall a note"
                )));
            };
            let rule = checklist
                .rule(&key)
                .ok_or_else(|| missing(key.to_string()))?;
            let item = key.item().as_str();
            let value = match rule.answer.as_str() {
                "cpna" => Answer::Cpna(Cpna::Conform),
                "yn" => Answer::YesNo(YesNo::Yes),
                "number" if item.contains("sample") => Answer::Number(10),
                "number" => Answer::Number(0),
                "date" => Answer::Date(start),
                "text" => Answer::Text("Nothing further.".into()),
                other => return Err(missing(format!("{key}: no demo answer for {other}"))),
            };
            edits.push(Edit::SetResponse {
                key,
                answer: value,
                note: String::new(),
                evidence: Vec::new(),
            });
        }
        for edit in edits {
            self.edit(who, when, edit)?;
        }
        Ok(self)
    }

    /// `who` attaches a one-page PDF saying `text` to the NC's `of` evidence;
    /// the file is stored as uploaded by them.
    fn attach(
        &mut self,
        who: &str,
        when: Timestamp,
        of: EvidenceOf,
        name: &str,
        text: &str,
    ) -> Result<&mut Self, SeedError> {
        let content = one_page_pdf(text);
        let sha = hex(&<sha2::Sha256 as sha2::Digest>::digest(&content));
        let file = Evidence {
            sha256: parse_col("sha256", &sha)?,
            name: name.into(),
            mime: "application/pdf".into(),
            size: content.len() as u64,
            taken_at: None,
        };
        self.files.push((who.to_owned(), content));
        self.edit(who, when, Edit::AttachNcEvidence { of, file })
    }

    fn edit(&mut self, who: &str, when: Timestamp, edit: Edit) -> Result<&mut Self, SeedError> {
        let refused = |rule, message: String| SeedError::Refused {
            what: format!("{edit:?} by {who}"),
            rule,
            message,
        };
        let author = self
            .authors
            .get(who)
            .ok_or_else(|| refused("demo.author", format!("{who} is not a demo person")))?;
        let actor = parse_col("actor", &demo_actor(who))?;
        self.doc.set_actor(actor);
        let change = apply_edit(self.id, &mut self.doc, &edit, author, when)
            .map_err(|r| refused(r.rule, r.message))?;
        self.made.push((who.to_owned(), change));
        Ok(self)
    }

    fn mv(
        &mut self,
        who: &str,
        when: Timestamp,
        mv: &str,
        note: &str,
    ) -> Result<&mut Self, SeedError> {
        self.edit(
            who,
            when,
            Edit::Move {
                mv: mv.into(),
                note: note.into(),
            },
        )
    }

    /// Stores the document: one transaction, each author's run of changes under their name.
    async fn store(self, db: &Db, number: Option<&str>) -> Result<usize, SeedError> {
        let mut tx = db.begin().await?;
        let mut new = 0;
        let mut start = 0;
        while start < self.made.len() {
            let who = &self.made[start].0;
            let end = self.made[start..]
                .iter()
                .position(|(w, _)| w != who)
                .map_or(self.made.len(), |n| start + n);
            let changes: Vec<Change> = self.made[start..end]
                .iter()
                .map(|(_, c)| c.clone())
                .collect();
            let origin = Origin {
                username: who.clone(),
                device: format!("demo-tablet-{who}"),
            };
            new += store::write_changes(&mut tx, &self.id, &self.doc, &changes, &origin, number)
                .await?;
            start = end;
        }
        // An NC's number reaches the devices as the server's own change,
        // as when a device's first store of it is committed.
        if let Some(number) = documents::number_of(&mut tx, &self.id).await?
            && Nc::read(&self.doc).is_ok()
        {
            let all: Vec<Change> = self.made.iter().map(|(_, c)| c.clone()).collect();
            let change = sync_core::nc::number_change(&all, &number)
                .map_err(|e| DbError::Corrupt(format!("cannot number {}: {e}", self.id)))?;
            let mut doc = self.doc.clone();
            doc.apply_changes([change.clone()])
                .map_err(|e| DbError::Corrupt(format!("cannot number {}: {e}", self.id)))?;
            let server = Origin {
                username: "server".into(),
                device: "server".into(),
            };
            new += store::write_changes(&mut tx, &self.id, &doc, &[change], &server, None).await?;
        }
        for (who, content) in &self.files {
            let sha = hex(&<sha2::Sha256 as sha2::Digest>::digest(content));
            blobs::complete(&mut tx, &sha, who, content).await?;
        }
        tx.commit().await.map_err(DbError::from)?;
        Ok(new)
    }
}

/// A one-page PDF (A4) showing one line of `text` (printable ASCII), as a
/// scanned note would be attached.
fn one_page_pdf(text: &str) -> Vec<u8> {
    let line: String = text
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .map(|c| match c {
            '(' | ')' | '\\' => format!("\\{c}"),
            c => c.to_string(),
        })
        .collect();
    let stream = format!("BT /F1 12 Tf 56 780 Td ({line}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] \
         /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>"
            .to_owned(),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
    ];
    let mut pdf = String::from("%PDF-1.4\n");
    let mut offsets = Vec::new();
    for (i, body) in objects.iter().enumerate() {
        offsets.push(pdf.len());
        pdf.push_str(&format!("{} 0 obj\n{body}\nendobj\n", i + 1));
    }
    let xref = pdf.len();
    pdf.push_str(&format!(
        "xref\n0 {}\n0000000000 65535 f \n",
        objects.len() + 1
    ));
    for o in offsets {
        pdf.push_str(&format!("{o:010} 00000 n \n"));
    }
    pdf.push_str(&format!(
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    ));
    pdf.into_bytes()
}

fn cpna(c: Cpna) -> Answer {
    Answer::Cpna(c)
}

fn answer(key: &str, answer: Answer, note: &str) -> Result<Edit, SeedError> {
    Ok(Edit::SetResponse {
        key: parse_col("response key", key)?,
        answer,
        note: note.into(),
        evidence: Vec::new(),
    })
}

fn finding(
    id: &str,
    class: FindingClass,
    clause: &str,
    process: Option<&str>,
    text: &str,
) -> Result<Edit, SeedError> {
    Ok(Edit::PutFinding {
        id: parse_col("finding id", id)?,
        class,
        clause: parse_col("clause", clause)?,
        process: process.map(|p| parse_col("process", p)).transpose()?,
        text: text.into(),
        evidence: Vec::new(),
    })
}

fn header(p: &Planned) -> Result<AuditHeader, SeedError> {
    Ok(AuditHeader {
        unit: parse_col("unit", DEMO_UNIT)?,
        number: p.number.into(),
        scope: p.scope.iter().map(|s| (*s).to_owned()).collect(),
        template_version: u64::try_from(p.template).unwrap_or(1),
        lead: parse_col("user", p.lead)?,
        team: std::iter::once(p.lead)
            .chain(p.members.iter().copied())
            .map(|u| parse_col("user", u))
            .collect::<Result<_, _>>()?,
        start: date(p.from),
        end: Some(date(p.to)),
    })
}

/// An NC of the demo: what it is about and who raised it when.
struct NcSpec {
    tag: u8,
    audit: usize,
    finding: &'static str,
    process: &'static str,
    clause: &'static str,
    class: Severity,
    raised_on: &'static str,
    by: &'static str,
    description: &'static str,
}

fn action(text: &str, owner: &str, target: &str, done_on: Option<&str>) -> Action {
    Action {
        text: text.into(),
        owner: owner.into(),
        target: date(target),
        done_on: done_on.map(date),
    }
}

fn put_action(id: &str, a: Action) -> Result<Edit, SeedError> {
    Ok(Edit::PutAction {
        id: parse_col("action id", id)?,
        action: a,
    })
}

/// Makes and stores every demo document; returns (documents, new changes).
/// The demo's people as sync-core judges them, from the seeded database.
async fn authors(db: &Db) -> Result<BTreeMap<String, Author>, SeedError> {
    let mut authors = BTreeMap::new();
    for (username, _, _) in super::PEOPLE {
        authors.insert(
            (*username).to_owned(),
            access::author_of(db, username).await?,
        );
    }
    Ok(authors)
}

/// The provisional number of the draft NC on K. Iyer's tablet.
pub const DRAFT_NUMBER: &str = "D-IYER-01";

/// The draft NC `D-IYER-01` (finding 14 of audit 003: MR minutes lack
/// decisions on resources), made on K. Iyer's demo tablet on the last day
/// of fieldwork and never synced. Clause 3.4 is carried by no process, so
/// the NC names none: the unit's nodal officer answers it. The same seeded
/// database always gives the same document.
pub async fn draft_on_iyers_tablet(db: &Db) -> Result<(DocumentId, Automerge), SeedError> {
    let authors = authors(db).await?;
    let audit = &planned()[2];
    let mut n = Maker::new(&authors, doc_id("2026-01-14", 0x4e));
    let link = NcLink {
        unit: parse_col("unit", DEMO_UNIT)?,
        audit: audit.id,
        finding: parse_col("finding", "f-14")?,
        process: None,
        clause: parse_col("clause", "3.4")?,
        class: Severity::Minor,
        raised_on: date("2026-01-14"),
    };
    n.edit(
        "k.iyer",
        at("2026-01-14", 8),
        Edit::CreateNc {
            link,
            description: "The minutes of MR-1 (20-08-2025) record no decision on the \
                          resources the units asked for."
                .into(),
            provisional: DRAFT_NUMBER.into(),
        },
    )?;
    Ok((n.id, n.doc))
}

pub async fn load(db: &Db) -> Result<(usize, usize), SeedError> {
    let authors = authors(db).await?;
    let plans = planned();
    let mut docs = 0;
    let mut new = 0;

    // Audit 001: closed.
    let p = &plans[0];
    let mut a = Maker::new(&authors, p.id);
    a.edit("k.iyer", at("2025-07-14", 4), Edit::CreateAudit(header(p)?))?
        .mv("k.iyer", at("2025-07-14", 4), "start", "Opening meeting held with the process owners.")?
        .edit("k.iyer", at("2025-07-14", 5), answer("chr.display", cpna(Cpna::NotConform), "Charter absent at the facilitation centre; the 2013 version is on the notice board.")?)?
        .edit("k.iyer", at("2025-07-14", 5), answer("chr.version", cpna(Cpna::NotConform), "Displayed copy is the 2013 version.")?)?
        .edit("k.iyer", at("2025-07-14", 6), answer("sd.timeliness@P01", cpna(Cpna::Partly), "4 of 20 letters acknowledged in 5 to 6 days.")?)?
        .edit("k.iyer", at("2025-07-14", 6), answer("sd.sample_size@P01", Answer::Number(20), "")?)?
        .edit("k.iyer", at("2025-07-14", 6), answer("sd.late_cases@P01", Answer::Number(4), "")?)?
        .edit("p.sharma", at("2025-07-14", 7), answer("sd.timeliness@P02", cpna(Cpna::Conform), "10 registrations sampled, all within 7 days.")?)?
        .edit("p.sharma", at("2025-07-14", 7), answer("sd.sop_available@P02", cpna(Cpna::Conform), "SOP flowchart displayed at the desk.")?)?
        .edit("p.sharma", at("2025-07-15", 4), answer("sd.timeliness@P04", cpna(Cpna::Partly), "2 of 10 refunds took over 60 days.")?)?
        .edit("p.sharma", at("2025-07-15", 4), answer("sd.interim_reply@P04", cpna(Cpna::NotConform), "No interim reply in either late case.")?)?
        .edit("k.iyer", at("2025-07-15", 5), answer("sd.timeliness@P03", cpna(Cpna::Conform), "")?)?
        .edit("k.iyer", at("2025-07-15", 5), answer("sd.timeliness@P05", cpna(Cpna::Conform), "")?)?
        .edit("k.iyer", at("2025-07-15", 6), finding("f-01", FindingClass::Minor, "3.2.1.1", Some("P01"), "4 of 20 letters acknowledged in 5 to 6 days against the 3-day standard.")?)?
        .edit("k.iyer", at("2025-07-15", 6), finding("f-02", FindingClass::Major, "2.2", Some("P01"), "Charter not displayed at the facilitation centre; the 2013 version is on the notice board.")?)?
        .edit("p.sharma", at("2025-07-15", 6), finding("f-03", FindingClass::Minor, "3.2.1.4", Some("P04"), "2 of 10 refunds took over 60 days with no interim reply.")?)?
        .edit("p.sharma", at("2025-07-15", 7), finding("f-04", FindingClass::Observation, "3.2.1.2", Some("P02"), "Verification reports uploaded late.")?)?
        .edit("k.iyer", at("2025-07-15", 7), finding("f-05", FindingClass::Ofi, "3.2.1.5", Some("P05"), "A token display system would order the queue at the counter.")?)?
        .edit("k.iyer", at("2025-07-15", 7), finding("f-06", FindingClass::GoodPractice, "3.2.1.2", Some("P02"), "SOP flowchart displayed at the desk.")?)?
        .edit("p.sharma", at("2025-07-15", 4), answer("sd.late_cases@P04", Answer::Number(2), "")?)?
        .answer_rest("k.iyer", at("2025-07-15", 10))?
        .mv("k.iyer", at("2025-07-15", 11), "submit_for_review", "Fieldwork complete.")?
        .mv("k.iyer", at("2025-07-18", 5), "issue_report", "Report issued to the Commissioner.")?
        .mv("k.iyer", at("2025-09-30", 5), "close", "All follow-ups verified or in hand.")?;
    new += a.store(db, Some(p.number)).await?;
    docs += 1;

    // Audit 002: report issued.
    let p = &plans[1];
    let mut a = Maker::new(&authors, p.id);
    a.edit(
        "p.sharma",
        at("2025-07-22", 4),
        Edit::CreateAudit(header(p)?),
    )?
    .mv("p.sharma", at("2025-07-22", 4), "start", "")?
    .edit(
        "p.sharma",
        at("2025-07-22", 5),
        answer(
            "doc.master_list",
            cpna(Cpna::NotConform),
            "Master list last updated in 2023.",
        )?,
    )?
    .edit(
        "p.sharma",
        at("2025-07-22", 5),
        answer(
            "doc.obsolete",
            cpna(Cpna::NotConform),
            "SOP Rev 1 in use at the refund counter.",
        )?,
    )?
    .edit(
        "s.khan",
        at("2025-07-22", 6),
        answer(
            "cmp.timeline",
            cpna(Cpna::NotConform),
            "3 CPGRAMS cases over 21 days with no interim reply.",
        )?,
    )?
    .edit(
        "s.khan",
        at("2025-07-22", 6),
        answer("cmp.appeal", Answer::YesNo(YesNo::Yes), "")?,
    )?
    .edit(
        "s.khan",
        at("2025-07-22", 7),
        answer(
            "rec.retention",
            cpna(Cpna::NotConform),
            "No retention period for refund files.",
        )?,
    )?
    .edit(
        "p.sharma",
        at("2025-07-22", 7),
        answer(
            "res.trained_staff",
            cpna(Cpna::Partly),
            "2 of 6 facilitation staff untrained.",
        )?,
    )?
    .edit(
        "p.sharma",
        at("2025-07-22", 7),
        answer(
            "ex.contacts",
            cpna(Cpna::Partly),
            "GSTN helpdesk contact missing from the plan.",
        )?,
    )?
    .edit(
        "p.sharma",
        at("2025-07-22", 8),
        finding(
            "f-07",
            FindingClass::Minor,
            "3.2.4",
            Some("P09"),
            "Obsolete SOP Rev 1 in use; the master list is stale.",
        )?,
    )?
    .edit(
        "s.khan",
        at("2025-07-22", 8),
        finding(
            "f-08",
            FindingClass::Major,
            "3.2.3",
            Some("P08"),
            "3 CPGRAMS cases over 21 days with no interim reply.",
        )?,
    )?
    .edit(
        "s.khan",
        at("2025-07-22", 8),
        finding(
            "f-09",
            FindingClass::Minor,
            "3.2.5",
            Some("P10"),
            "Retention period for refund files undefined.",
        )?,
    )?
    .edit(
        "p.sharma",
        at("2025-07-22", 9),
        finding(
            "f-10",
            FindingClass::Minor,
            "3.3",
            Some("P02"),
            "2 of 6 facilitation staff untrained.",
        )?,
    )?
    .edit(
        "p.sharma",
        at("2025-07-22", 9),
        finding(
            "f-11",
            FindingClass::Observation,
            "3.2.2",
            Some("P07"),
            "GSTN helpdesk contact missing from the exigency plan.",
        )?,
    )?
    .edit(
        "s.khan",
        at("2025-07-22", 9),
        finding(
            "f-12",
            FindingClass::Ofi,
            "3.3",
            None,
            "The feedback box is rarely opened.",
        )?,
    )?
    .answer_rest("p.sharma", at("2025-07-22", 10))?
    .mv("p.sharma", at("2025-07-22", 11), "submit_for_review", "")?
    .mv(
        "p.sharma",
        at("2025-07-25", 5),
        "issue_report",
        "Report issued.",
    )?;
    new += a.store(db, Some(p.number)).await?;
    docs += 1;

    // Audit 003: in review (done offline on 13-14 Jan 2026, since synced).
    let p = &plans[2];
    let mut a = Maker::new(&authors, p.id);
    a.edit("k.iyer", at("2026-01-13", 4), Edit::CreateAudit(header(p)?))?
        .mv(
            "k.iyer",
            at("2026-01-13", 4),
            "start",
            "Follow-up of audits 001 and 002.",
        )?
        .edit(
            "k.iyer",
            at("2026-01-13", 5),
            answer(
                "sd.timeliness@P03",
                cpna(Cpna::Partly),
                "One amendment approved in 19 days.",
            )?,
        )?
        .edit(
            "s.khan",
            at("2026-01-13", 6),
            answer(
                "sd.timeliness@P04",
                cpna(Cpna::Conform),
                "Interim replies now sent.",
            )?,
        )?
        .edit(
            "s.khan",
            at("2026-01-13", 7),
            answer("cmp.cpgrams", cpna(Cpna::Conform), "")?,
        )?
        .edit(
            "s.khan",
            at("2026-01-13", 7),
            answer(
                "cmp.analysis",
                cpna(Cpna::Partly),
                "Analysis quarterly, not monthly.",
            )?,
        )?
        // Both sampled refund files offline and answered the same item:
        // the contest awaits the lead.
        .concurrently(
            at("2026-01-13", 8),
            (
                "k.iyer",
                answer(
                    "sd.interim_reply@P04",
                    cpna(Cpna::Conform),
                    "Interim replies seen in all 8 files sampled.",
                )?,
            ),
            (
                "s.khan",
                answer(
                    "sd.interim_reply@P04",
                    cpna(Cpna::Partly),
                    "2 of 10 files sampled have no interim reply.",
                )?,
            ),
        )?
        .edit(
            "k.iyer",
            at("2026-01-14", 4),
            answer(
                "mr.decisions",
                cpna(Cpna::Partly),
                "MR-1 minutes lack decisions on resources.",
            )?,
        )?
        .edit(
            "k.iyer",
            at("2026-01-14", 5),
            finding(
                "f-13",
                FindingClass::Minor,
                "3.2.1.3",
                Some("P03"),
                "An amendment was approved in 19 days against the 15-day standard.",
            )?,
        )?
        .edit(
            "k.iyer",
            at("2026-01-14", 5),
            finding(
                "f-14",
                FindingClass::Minor,
                "3.4",
                None,
                "Management review minutes lack decisions on resources.",
            )?,
        )?
        .edit(
            "s.khan",
            at("2026-01-14", 6),
            finding(
                "f-15",
                FindingClass::Observation,
                "3.2.3",
                Some("P08"),
                "Grievance analysis is quarterly, not monthly.",
            )?,
        )?
        .edit(
            "k.iyer",
            at("2026-01-13", 5),
            answer("sd.late_cases@P03", Answer::Number(1), "")?,
        )?
        .answer_rest("k.iyer", at("2026-01-14", 10))?
        .mv(
            "k.iyer",
            at("2026-01-14", 11),
            "submit_for_review",
            "Fieldwork complete; locked for review.",
        )?;
    new += a.store(db, Some(p.number)).await?;
    docs += 1;

    for spec in nc_specs() {
        let id = doc_id(spec.raised_on, 0x40 + spec.tag);
        let mut n = Maker::new(&authors, id);
        let link = NcLink {
            unit: parse_col("unit", DEMO_UNIT)?,
            audit: plans[spec.audit].id,
            finding: parse_col("finding", spec.finding)?,
            process: Some(parse_col("process", spec.process)?),
            clause: parse_col("clause", spec.clause)?,
            class: spec.class,
            raised_on: date(spec.raised_on),
        };
        n.edit(
            spec.by,
            at(spec.raised_on, 6),
            Edit::CreateNc {
                link,
                description: spec.description.into(),
                provisional: String::new(),
            },
        )?
        .mv(spec.by, at(spec.raised_on, 6), "raise", "")?;
        nc_history(&mut n, spec.tag)?;
        new += n.store(db, None).await?;
        docs += 1;
    }

    let mut r = Maker::new(&authors, doc_id("2025-08-20", 0x60));
    r.edit("a.rao", at("2025-08-14", 5), Edit::CreateReview { unit: parse_col("unit", DEMO_UNIT)?, title: "MR-1: management review 2025-26".into() })?
        .edit("a.rao", at("2025-08-20", 9), Edit::HoldReview(date("2025-08-20")))?
        .edit("a.rao", at("2025-08-20", 9), Edit::AddDecision("Train the untrained facilitation staff before the next audit cycle.".into()))?
        .edit("a.rao", at("2025-08-20", 9), Edit::AddDecision("Bring the master list of documents up to date.".into()))?
        .edit("a.rao", at("2025-08-20", 9), put_action("a-1", action("Train 2 facilitation staff on the Charter and SOPs", "AC Div-II", "2025-09-30", None))?)?
        .edit("a.rao", at("2025-08-20", 9), put_action("a-2", action("Update the master list of controlled documents", "AO Admin", "2025-09-15", Some("2025-09-12")))?)?
        .edit("a.rao", at("2025-08-20", 9), put_action("a-3", action("Install a token display system at the facilitation centre", "AC Tech", "2026-03-31", None))?)?
        .edit("a.rao", at("2025-08-20", 10), Edit::SetMinutes("Inputs: audit 001 results, NC status, grievances, feedback, resources. Token display system in progress.".into()))?;
    new += r.store(db, None).await?;
    docs += 1;
    Ok((docs, new))
}

fn nc_specs() -> Vec<NcSpec> {
    let spec = |tag, audit, finding, process, clause, class, raised_on, by, description| NcSpec {
        tag,
        audit,
        finding,
        process,
        clause,
        class,
        raised_on,
        by,
        description,
    };
    vec![
        spec(
            1,
            0,
            "f-01",
            "P01",
            "3.2.1.1",
            Severity::Minor,
            "2025-07-18",
            "k.iyer",
            "Communications not acknowledged within 3 days (4 of 20 sampled).",
        ),
        spec(
            2,
            0,
            "f-02",
            "P01",
            "2.2",
            Severity::Major,
            "2025-07-18",
            "k.iyer",
            "Current Citizens' Charter not displayed at the facilitation centre.",
        ),
        spec(
            3,
            0,
            "f-03",
            "P04",
            "3.2.1.4",
            Severity::Minor,
            "2025-07-18",
            "p.sharma",
            "Refunds delayed beyond 60 days without an interim reply.",
        ),
        spec(
            4,
            1,
            "f-07",
            "P09",
            "3.2.4",
            Severity::Minor,
            "2025-07-25",
            "p.sharma",
            "Obsolete SOP in use; master list not maintained.",
        ),
        spec(
            5,
            1,
            "f-08",
            "P08",
            "3.2.3",
            Severity::Major,
            "2025-07-25",
            "s.khan",
            "CPGRAMS grievances disposed of beyond 21 days without an interim reply.",
        ),
        spec(
            6,
            1,
            "f-09",
            "P10",
            "3.2.5",
            Severity::Minor,
            "2025-07-25",
            "s.khan",
            "No retention period defined for refund files.",
        ),
        spec(
            7,
            1,
            "f-10",
            "P02",
            "3.3",
            Severity::Minor,
            "2025-07-25",
            "p.sharma",
            "Facilitation staff not trained on the Charter and SOPs.",
        ),
        spec(
            8,
            2,
            "f-13",
            "P03",
            "3.2.1.3",
            Severity::Minor,
            "2026-01-14",
            "k.iyer",
            "Registration amendment approved in 19 days against the 15-day standard.",
        ),
    ]
}

/// What happened to each NC after it was raised.
fn nc_history(n: &mut Maker<'_>, tag: u8) -> Result<(), SeedError> {
    let respond = |n: &mut Maker<'_>,
                   owner: &str,
                   day: &str,
                   correction: &str,
                   cause: &str,
                   act: Action|
     -> Result<(), SeedError> {
        n.edit(owner, at(day, 5), Edit::SetCorrection(correction.into()))?
            .edit(owner, at(day, 5), Edit::SetRootCause(cause.into()))?
            .edit(owner, at(day, 5), put_action("a-1", act)?)?
            .mv(owner, at(day, 6), "submit_response", "")?;
        Ok(())
    };
    match tag {
        1 => {
            respond(
                n,
                "ac.tech",
                "2025-07-22",
                "Pending letters acknowledged.",
                "The diary clerk post was vacant; no back-up.",
                action(
                    "Name a back-up diary clerk and track acknowledgement daily",
                    "AC Tech",
                    "2025-08-10",
                    None,
                ),
            )?;
            n.mv("p.sharma", at("2025-07-24", 5), "accept_plan", "")?
                .edit(
                    "ac.tech",
                    at("2025-08-08", 5),
                    put_action(
                        "a-1",
                        action(
                            "Name a back-up diary clerk and track acknowledgement daily",
                            "AC Tech",
                            "2025-08-10",
                            Some("2025-08-08"),
                        ),
                    )?,
                )?
                .attach(
                    "ac.tech",
                    at("2025-08-08", 5),
                    EvidenceOf::Implementation,
                    "back-up-diary-clerk-order.pdf",
                    "Office order 14/2025: back-up diary clerk named; daily acknowledgement check.",
                )?
                .mv("ac.tech", at("2025-08-08", 6), "mark_implemented", "")?
                .attach(
                    "k.iyer",
                    at("2025-08-20", 4),
                    EvidenceOf::Verification,
                    "letters-august-sample.pdf",
                    "20 letters of August 2025 sampled: acknowledged in 1 to 3 days.",
                )?
                .edit(
                    "k.iyer",
                    at("2025-08-20", 5),
                    Edit::SetVerification {
                        note: "20 letters of August sampled: all acknowledged within 3 days."
                            .into(),
                        on: date("2025-08-20"),
                    },
                )?
                .mv("k.iyer", at("2025-08-20", 6), "verify_effective", "")?;
        }
        2 => {
            respond(
                n,
                "ac.tech",
                "2025-07-21",
                "Current Charter displayed at the entrance and the facilitation centre.",
                "No one was responsible for replacing the Charter after its revision.",
                action(
                    "Make the facilitation centre in-charge responsible for the Charter display",
                    "AC Tech",
                    "2025-08-05",
                    Some("2025-08-01"),
                ),
            )?;
            n.mv("k.iyer", at("2025-07-23", 5), "accept_plan", "")?
                .attach(
                    "ac.tech",
                    at("2025-08-02", 4),
                    EvidenceOf::Implementation,
                    "charter-display-photo-note.pdf",
                    "Citizen's Charter (revised) displayed at the entrance and the facilitation centre.",
                )?
                .mv("ac.tech", at("2025-08-02", 5), "mark_implemented", "")?
                .edit(
                    "p.sharma",
                    at("2025-08-12", 5),
                    Edit::SetVerification {
                        note: "Current Charter seen at both places in English and Malayalam."
                            .into(),
                        on: date("2025-08-12"),
                    },
                )?
                .mv("p.sharma", at("2025-08-12", 6), "verify_effective", "")?;
        }
        3 => {
            respond(
                n,
                "ac.refunds",
                "2025-07-24",
                "Interim replies sent in both late cases.",
                "No alert for refunds nearing 60 days.",
                action(
                    "Weekly list of refunds pending over 45 days, with interim replies",
                    "AC Refunds",
                    "2025-09-10",
                    Some("2025-09-10"),
                ),
            )?;
            n.mv("k.iyer", at("2025-07-28", 5), "accept_plan", "")?
                .attach(
                    "ac.refunds",
                    at("2025-09-10", 5),
                    EvidenceOf::Implementation,
                    "refunds-over-45-days-week-36.pdf",
                    "Weekly list of refunds pending over 45 days, with interim replies sent.",
                )?
                .mv("ac.refunds", at("2025-09-10", 6), "mark_implemented", "")?;
        }
        4 => {
            respond(
                n,
                "ao.admin",
                "2025-08-05",
                "SOP Rev 1 withdrawn from the refund counter.",
                "Document changes were not reflected in the master list.",
                action(
                    "Revise the master list and withdraw obsolete copies",
                    "AO Admin",
                    "2025-09-23",
                    None,
                ),
            )?;
            n.mv("s.khan", at("2025-08-08", 5), "accept_plan", "")?;
        }
        5 => {
            respond(
                n,
                "m.das",
                "2025-08-05",
                "Interim replies sent in the 3 cases.",
                "Workload.",
                action("Clear the backlog", "AC Grievance", "2025-09-30", None),
            )?;
            n.mv(
                "s.khan",
                at("2025-08-12", 5),
                "reject_plan",
                "The root cause does not explain why no interim replies were sent.",
            )?
            .edit(
                "a.rao",
                at("2025-12-20", 5),
                Edit::Extend {
                    of: DueKind::Action,
                    due: date("2026-02-28"),
                    justification: "The CPGRAMS portal migration delayed the analysis.".into(),
                },
            )?;
            respond(
                n,
                "m.das",
                "2026-01-10",
                "Interim replies sent in the 3 cases and in 5 more found on review.",
                "No tracking of grievances against the 21-day norm; interim replies left to each officer.",
                action(
                    "Daily CPGRAMS ageing report with interim replies at day 15",
                    "AC Grievance",
                    "2026-02-28",
                    None,
                ),
            )?;
        }
        7 => {
            for of in [DueKind::Response, DueKind::Action] {
                n.edit(
                    "a.rao",
                    at("2025-08-01", 5),
                    Edit::Extend {
                        of,
                        due: date("2026-01-31"),
                        justification: "Training calendar of the zone starts in January.".into(),
                    },
                )?;
            }
        }
        8 => {
            n.mv(
                "k.iyer",
                at("2026-01-14", 9),
                "withdraw",
                "The 15-day clock starts at a complete application; this case was within time.",
            )?;
        }
        _ => {}
    }
    Ok(())
}
