//! `sqm seed demo`: the fictional demo unit, CGST Commissionerate Demo-I, as
//! of 15-01-2026: its people and roles, processes and owners, the checklist
//! templates v1 and v2, the 2025-26 audit programme, three audits with their
//! findings and NCs, and the first management review. Every name is invented.
//!
//! Documents are made through sync-core's edits, as the people of the demo
//! would have made them on their tablets, so they pass the same rules as any
//! device's changes. Loading twice changes nothing: ids, actors and times are
//! fixed, so the second run makes the same changes, already stored.

mod documents;
pub mod tablet;

use std::fmt;

use sha2::{Digest, Sha256};
use sync_core::date::Date;
use sync_core::permissions::Role;

use crate::auth::password::{PasswordError, hash_blocking};
use crate::db::accounts::{self, Assignment, User, hex};
use crate::db::reference::{self, ManualIssue, PlannedAudit, Process, Programme, TeamMember, Unit};
use crate::db::{Db, DbError, parse_col};
use crate::secret::Secret;

/// The password of every demo account (printed by `sqm serve --demo`).
pub const DEMO_PASSWORD: &str = "sevottam-demo";

/// The unit the demo is about.
pub const DEMO_UNIT: &str = "DEMO-I";

/// One login per role, as the run command prints them.
pub const DEMO_LOGINS: &[(&str, &str)] = &[
    ("k.iyer", "auditor: lead of audits 001 and 003"),
    ("s.khan", "auditor: team member of audits 002 and 003"),
    ("ac.div2", "process owner: P02 and P03"),
    ("m.das", "process owner: P08 (grievances)"),
    ("a.rao", "nodal officer of CGST Commissionerate Demo-I"),
    ("v.nair", "nodal officer at the apex (DG Taxpayer Services)"),
    ("sqm.admin", "administrator of accounts and reference data"),
];

/// Why the demo could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Hashing the demo password failed.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// A shipped template file does not read (a bug in the demo data).
    #[error("{file}: {}", mistakes.join("; "))]
    Template {
        /// The file.
        file: &'static str,
        /// Its mistakes, by line.
        mistakes: Vec<String>,
    },
    /// A demo edit was refused by sync-core's rules (a bug in the demo data).
    #[error("the demo edit '{what}' was refused: {message} ({rule})")]
    Refused {
        /// Which edit.
        what: String,
        /// The rule.
        rule: &'static str,
        /// Why.
        message: String,
    },
}

/// What loading did.
#[derive(Debug, Default)]
pub struct SeedReport {
    /// Accounts created now.
    pub accounts: usize,
    /// Documents in the demo.
    pub documents: usize,
    /// Changes stored now (0 on a second run).
    pub new_changes: usize,
}

impl fmt::Display for SeedReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Demo unit {DEMO_UNIT} loaded: {} new accounts, {} documents, {} new changes.",
            self.accounts, self.documents, self.new_changes
        )
    }
}

/// (username, name, designation).
const PEOPLE: &[(&str, &str, &str)] = &[
    ("sqm.admin", "SQM Administrator", "System administrator"),
    (
        "v.nair",
        "V. Nair",
        "Additional Director General (apex nodal officer)",
    ),
    ("a.rao", "A. Rao", "Additional Commissioner"),
    ("k.iyer", "K. Iyer", "Superintendent"),
    ("p.sharma", "P. Sharma", "Superintendent"),
    ("s.khan", "S. Khan", "Inspector"),
    ("m.das", "M. Das", "Assistant Commissioner (Grievance)"),
    ("ac.tech", "R. Menon", "Assistant Commissioner (Technical)"),
    (
        "ac.div2",
        "S. Pillai",
        "Assistant Commissioner, Division-II",
    ),
    ("ac.refunds", "T. Bose", "Assistant Commissioner (Refunds)"),
    ("dc.tech", "N. Joshi", "Deputy Commissioner (Technical)"),
    ("dc.ae", "H. Singh", "Deputy Commissioner (Anti-evasion)"),
    ("supdt.sys", "L. Fernandes", "Superintendent (Systems)"),
    ("ao.admin", "G. Kulkarni", "Administrative Officer"),
];

/// (username, unit, role).
const ROLES: &[(&str, &str, Role)] = &[
    ("sqm.admin", "CBIC", Role::Admin),
    ("v.nair", "DGTS", Role::NodalOfficer),
    ("a.rao", DEMO_UNIT, Role::NodalOfficer),
    ("k.iyer", DEMO_UNIT, Role::Auditor),
    ("p.sharma", DEMO_UNIT, Role::Auditor),
    ("s.khan", DEMO_UNIT, Role::Auditor),
    ("m.das", DEMO_UNIT, Role::ProcessOwner),
    ("ac.tech", DEMO_UNIT, Role::ProcessOwner),
    ("ac.div2", DEMO_UNIT, Role::ProcessOwner),
    ("ac.refunds", DEMO_UNIT, Role::ProcessOwner),
    ("dc.tech", DEMO_UNIT, Role::ProcessOwner),
    ("dc.ae", DEMO_UNIT, Role::ProcessOwner),
    ("supdt.sys", DEMO_UNIT, Role::ProcessOwner),
    ("ao.admin", DEMO_UNIT, Role::ProcessOwner),
];

/// (code, clause, name, standard, owner).
const PROCESSES: &[(&str, &str, &str, &str, &str)] = &[
    (
        "P01",
        "3.2.1.1",
        "Acknowledge communications",
        "3 d",
        "ac.tech",
    ),
    ("P02", "3.2.1.2", "GST registration", "7/30 d", "ac.div2"),
    (
        "P03",
        "3.2.1.3",
        "Registration amendment",
        "15 d",
        "ac.div2",
    ),
    (
        "P04",
        "3.2.1.4",
        "GST refund disposal",
        "60 d",
        "ac.refunds",
    ),
    (
        "P05",
        "3.2.1.5",
        "Decisions on declarations/assessments",
        "15 d",
        "dc.tech",
    ),
    (
        "P06",
        "3.2.1.6",
        "Release of seized documents",
        "30 d (assumed)",
        "dc.ae",
    ),
    ("P07", "3.2.2", "Exigencies (GSTN outage)", "", "supdt.sys"),
    (
        "P08",
        "3.2.3",
        "Complaint handling (CPGRAMS)",
        "21 d",
        "m.das",
    ),
    ("P09", "3.2.4", "Control of documents", "", "ao.admin"),
    ("P10", "3.2.5", "Control of records", "", "ao.admin"),
];

/// The demo's fixed actor id for a person's demo tablet.
pub fn demo_actor(username: &str) -> String {
    hex(&Sha256::digest(format!("sqm-demo-tablet/{username}").as_bytes())[..16])
}

fn unit(code: &str, name: &str, parent: Option<&str>) -> Unit {
    Unit {
        code: code.into(),
        name: name.into(),
        parent: parent.map(Into::into),
    }
}

/// The demo's checklist versions, from the files `sqm template publish`
/// reads: version 1, and version 2 implementing amendment A-01.
pub const TEMPLATE_FILES: &[(&str, &str)] = &[
    (
        "templates/sqm-03-v1.json",
        include_str!("../../../templates/sqm-03-v1.json"),
    ),
    (
        "templates/sqm-03-v2.json",
        include_str!("../../../templates/sqm-03-v2.json"),
    ),
];

fn templates() -> Result<Vec<crate::templates::Parsed>, SeedError> {
    TEMPLATE_FILES
        .iter()
        .map(|(name, text)| {
            crate::templates::parse(text).map_err(|mistakes| SeedError::Template {
                file: name,
                mistakes: mistakes.iter().map(ToString::to_string).collect(),
            })
        })
        .collect()
}

fn team(lead: &str, members: &[&str]) -> Vec<TeamMember> {
    std::iter::once(TeamMember {
        username: lead.into(),
        role: "lead".into(),
    })
    .chain(members.iter().map(|m| TeamMember {
        username: (*m).into(),
        role: "member".into(),
    }))
    .collect()
}

/// Loads the demo unit; safe to run again.
pub async fn demo(db: &Db) -> Result<SeedReport, SeedError> {
    let mut report = SeedReport::default();
    let password = Secret::from(DEMO_PASSWORD.to_owned());
    // One hash for every demo account: they share one published password.
    let hash = tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| PasswordError::Hashing(e.to_string()))??;
    let mut tx = db.begin().await?;
    for u in [
        unit("CBIC", "Central Board of Indirect Taxes and Customs", None),
        unit("DGTS", "DG Taxpayer Services", Some("CBIC")),
        unit("DEMO-ZONE", "Demo Zone", Some("DGTS")),
        unit(DEMO_UNIT, "CGST Commissionerate Demo-I", Some("DEMO-ZONE")),
        unit("DEMO-I-DIV2", "Division-II", Some(DEMO_UNIT)),
        unit("DEMO-I-DIV2-R4", "Range-IV", Some("DEMO-I-DIV2")),
    ] {
        reference::upsert_unit(&mut tx, &u).await?;
    }
    for (username, name, designation) in PEOPLE {
        let user = User {
            username: parse_col("username", username)?,
            display_name: (*name).into(),
            designation: (*designation).into(),
            disabled_at: None,
        };
        if accounts::insert_user(&mut tx, &user, &hash).await? {
            report.accounts += 1;
        }
        accounts::ensure_device(
            &mut tx,
            &format!("demo-tablet-{username}"),
            username,
            "Demo tablet",
            &demo_actor(username),
        )
        .await?;
    }
    let from: Date = parse_col("date", "2025-04-01")?;
    for (username, unit, role) in ROLES {
        let a = Assignment {
            id: format!("demo-{username}-{role}"),
            username: parse_col("username", username)?,
            unit: parse_col("unit", unit)?,
            role: *role,
            valid_from: from,
            valid_until: None,
            office_order: "OO 12/2025-SQM dated 01-04-2025".into(),
        };
        accounts::insert_assignment(&mut tx, &a, "demo").await?;
    }
    for (code, clause, name, standard, owner) in PROCESSES {
        let p = Process {
            unit: DEMO_UNIT.into(),
            code: (*code).into(),
            clause: (*clause).into(),
            name: (*name).into(),
            standard: (*standard).into(),
            owner: (*owner).into(),
            deputy: None,
        };
        reference::upsert_process(&mut tx, &p).await?;
    }
    reference::insert_manual_issue(
        &mut tx,
        &ManualIssue {
            id: "SQM-03".into(),
            title: "Sevottam Service Quality Manual, Issue 03".into(),
            based_on: "IS 15700:2005".into(),
            published_on: "2013-04-01".into(),
        },
    )
    .await?;
    for t in templates()? {
        if reference::insert_template(&mut tx, &t.template).await?
            && let Some(a) = &t.amendment
        {
            reference::insert_amendment(&mut tx, a, "sqm.admin").await?;
        }
    }
    // The unit acknowledged A-01 on receiving it.
    reference::acknowledge_amendment(&mut tx, "A-01", DEMO_UNIT, "a.rao").await?;
    reference::upsert_programme(
        &mut tx,
        &Programme {
            id: "demo-programme-2025-26".into(),
            unit: DEMO_UNIT.into(),
            fy: "2025-26".into(),
            cycles: 2,
            scope: [
                "P01", "P02", "P03", "P04", "P05", "P06", "P07", "P08", "P09", "P10", "2.2", "3.3",
                "3.4",
            ]
            .map(String::from)
            .to_vec(),
            approved_on: Some("2025-06-20".into()),
            approved_by: Some("a.rao".into()),
        },
    )
    .await?;
    for a in documents::planned() {
        let planned = PlannedAudit {
            id: a.id.to_string(),
            unit: DEMO_UNIT.into(),
            number: a.number.into(),
            scope: a.scope.iter().map(|s| (*s).to_owned()).collect(),
            planned_from: a.from.into(),
            planned_to: a.to.into(),
            template_version: a.template,
            begun: false,
            team: team(a.lead, a.members),
        };
        reference::insert_planned_audit(&mut tx, &planned, "a.rao").await?;
    }
    tx.commit().await.map_err(DbError::from)?;
    let (documents, new_changes) = documents::load(db).await?;
    report.documents = documents;
    report.new_changes = new_changes;
    Ok(report)
}
