//! The demo's tablet fixture: what K. Iyer's demo tablet holds that the
//! server has never seen, the draft NC `D-IYER-01` (demo-seed.md, finding
//! 14). The browser client loads it into a fresh install signed in as
//! K. Iyer on his demo tablet (the device the seed registers, whose actor
//! made the draft), and its first sync takes the draft to the server,
//! which gives it its `NC-<n>`.
//!
//! The file is shipped at [`FIXTURE_FILE`]; a test makes it again from the
//! seeded database and fails when the two differ.

use serde::{Deserialize, Serialize};

use super::{SeedError, demo_actor};
use crate::db::Db;
use crate::db::accounts::hex;

/// Where the fixture is shipped, from the workspace root.
pub const FIXTURE_FILE: &str = "pwa/fixtures/demo-tablet-k.iyer.json";

/// What one demo tablet holds beyond the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TabletFixture {
    /// What it is, in words.
    pub about: String,
    /// Whose tablet.
    pub user: String,
    /// The device the seed registers for it.
    pub device: String,
    /// The device's actor id (hex), which made every change below.
    pub actor: String,
    /// The documents only this tablet holds.
    pub documents: Vec<FixtureDocument>,
}

/// One document only the tablet holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureDocument {
    /// Its id.
    pub id: String,
    /// Its kind (`nc`).
    pub kind: String,
    /// The number the tablet shows until the server's arrives.
    pub provisional: String,
    /// The document as Automerge saves it, in hex.
    pub saved: String,
}

/// K. Iyer's demo tablet, made from a database the demo is seeded in.
pub async fn iyers_tablet(db: &Db) -> Result<TabletFixture, SeedError> {
    let (id, doc) = super::documents::draft_on_iyers_tablet(db).await?;
    Ok(TabletFixture {
        about: format!(
            "K. Iyer's demo tablet: the draft NC {} (finding 14 of audit \
             IA/DEMO-I/2025-26/003, clause 3.4), made offline on 14-01-2026 and \
             never synced. Load it signed in as k.iyer on device demo-tablet-k.iyer.",
            super::documents::DRAFT_NUMBER
        ),
        user: "k.iyer".into(),
        device: "demo-tablet-k.iyer".into(),
        actor: demo_actor("k.iyer"),
        documents: vec![FixtureDocument {
            id: id.to_string(),
            kind: "nc".into(),
            provisional: super::documents::DRAFT_NUMBER.into(),
            saved: hex(&doc.save()),
        }],
    })
}

/// The fixture as the shipped file holds it: pretty JSON, one final line break.
pub fn to_file_text(fixture: &TabletFixture) -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string_pretty(fixture)? + "\n")
}
