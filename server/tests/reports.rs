//! The NC ageing report of the demo unit, on SQLite and PostgreSQL, against
//! figures worked out by hand from the demo seed (`shared/demo-seed.md`) as
//! of its date, 15-01-2026: the NCs still to be dealt with are NC-03
//! (implemented, raised 18-07-2025 by audit 001) and NC-04 to NC-07 (raised
//! 25-07-2025 by audit 002); NC-04's actions were due 23-09-2025, NC-06's
//! response 01-08-2025, NC-07's response was extended to 31-01-2026, NC-05
//! waits for the auditor. Its JSON, CSV and printable forms, and
//! `sqm report`, say the same; it is for nodal officers and admins only.
//! A change the server refused in the unit is listed in its quarantine
//! report, as people read it.

mod common;

use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::{Backend, TestServer, drop_database, fresh_database};
use reqwest::StatusCode;
use serde_json::Value;

const AGEING: &str = "/api/v1/reports/units/DEMO-I/nc-ageing";

/// One NC as the report should give it, by hand.
struct Want {
    number: &'static str,
    process: &'static str,
    owner: &'static str,
    state: &'static str,
    raised_on: &'static str,
    age_days: i64,
    due: Option<&'static str>,
    days_overdue: Option<i64>,
    escalation: Option<&'static str>,
}

/// As of 15-01-2026. Ages: 18-07-2025 to 15-01-2026 is 181 days, 25-07-2025
/// to it 174; overdue: 23-09-2025 to it 114 days, 01-08-2025 to it 167 (both
/// over 30: level 3); 31-01-2026 is still to come.
const ON_THE_DEMO_DATE: &[Want] = &[
    Want {
        number: "NC-03",
        process: "P04",
        owner: "ac.refunds",
        state: "implemented",
        raised_on: "2025-07-18",
        age_days: 181,
        due: None,
        days_overdue: None,
        escalation: None,
    },
    Want {
        number: "NC-04",
        process: "P09",
        owner: "ao.admin",
        state: "plan_accepted",
        raised_on: "2025-07-25",
        age_days: 174,
        due: Some("2025-09-23"),
        days_overdue: Some(114),
        escalation: Some("L3"),
    },
    Want {
        number: "NC-05",
        process: "P08",
        owner: "m.das",
        state: "response_submitted",
        raised_on: "2025-07-25",
        age_days: 174,
        due: None,
        days_overdue: None,
        escalation: None,
    },
    Want {
        number: "NC-06",
        process: "P10",
        owner: "ao.admin",
        state: "open",
        raised_on: "2025-07-25",
        age_days: 174,
        due: Some("2025-08-01"),
        days_overdue: Some(167),
        escalation: Some("L3"),
    },
    Want {
        number: "NC-07",
        process: "P02",
        owner: "ac.div2",
        state: "open",
        raised_on: "2025-07-25",
        age_days: 174,
        due: Some("2026-01-31"),
        days_overdue: None,
        escalation: None,
    },
];

fn numbers(report: &Value) -> Vec<String> {
    let mut n: Vec<String> = report["ncs"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| r["number"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

fn counts(report: &Value, key: &str) -> Vec<(String, i64)> {
    report[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| {
                    (
                        c["label"].as_str().unwrap_or("").to_owned(),
                        c["count"].as_i64().unwrap_or(-1),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn pairs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(l, n)| ((*l).to_owned(), *n)).collect()
}

/// The body of a GET as text, with its content type.
async fn text(s: &TestServer, path: &str, token: &str) -> Result<(StatusCode, String, String)> {
    let res = s
        .client
        .get(format!("{}{path}", s.base))
        .bearer_auth(token)
        .send()
        .await?;
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    Ok((status, kind, res.text().await?))
}

on_both! {
    async fn the_nc_ageing_of_the_demo_unit_is_what_the_seed_works_out_to_by_hand(backend: Backend) -> Result<()> {
        let (url, dir, pg) = fresh_database(backend).await?;
        let sqm = |args: &[&str]| {
            Command::new(env!("CARGO_BIN_EXE_sqm"))
                .arg("--db")
                .arg(&url)
                .arg("--data-dir")
                .arg(&dir)
                .args(args)
                .env_remove("DATABASE_URL")
                .env("SQM_LOG", "warn")
                .output()
                .context("cannot run sqm")
        };
        let seeded = sqm(&["seed", "demo"])?;
        ensure!(seeded.status.success(), "{seeded:?}");
        let s = TestServer::start_at(&url, dir.clone(), None, false, |_| {}).await?;
        let rao = s.login("a.rao").await?;

        let (status, r) = s.get(&format!("{AGEING}?as_of=2026-01-15"), &rao).await?;
        assert_eq!(status, StatusCode::OK, "{r}");
        assert_eq!(r["as_of"], "2026-01-15");
        assert_eq!(r["units"][0], "DEMO-I", "the unit asked for comes first");
        let rows = r["ncs"].as_array().context("ncs")?;
        assert_eq!(rows.len(), ON_THE_DEMO_DATE.len(), "{r}");
        for want in ON_THE_DEMO_DATE {
            let got = rows
                .iter()
                .find(|n| n["number"] == want.number)
                .with_context(|| format!("{} is missing: {r}", want.number))?;
            let n = want.number;
            assert_eq!(got["process"], want.process, "{n}");
            assert_eq!(got["owner"], want.owner, "{n}");
            assert_eq!(got["state"], want.state, "{n}");
            assert_eq!(got["raised_on"], want.raised_on, "{n}");
            assert_eq!(got["age_days"], want.age_days, "{n}");
            assert_eq!(got["bucket"], "over 90", "{n}");
            assert_eq!(got["due"].as_str(), want.due, "{n}");
            assert_eq!(got["days_overdue"].as_i64(), want.days_overdue, "{n}");
            assert_eq!(got["escalation"].as_str(), want.escalation, "{n}");
        }
        assert_eq!(
            counts(&r, "buckets"),
            pairs(&[("0-15", 0), ("16-30", 0), ("31-60", 0), ("61-90", 0), ("over 90", 5)])
        );
        assert_eq!(counts(&r, "levels"), pairs(&[("none", 3), ("L1", 0), ("L2", 0), ("L3", 2)]));
        // The devices the seed's changes came from, each with when it was last heard from.
        let devices = r["devices"].as_array().context("devices")?;
        assert!(!devices.is_empty(), "{r}");
        for d in devices {
            let at = d["last_synced"].as_str().unwrap_or("");
            assert!(at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T', "{d}");
        }
        for writer in ["s.khan", "p.sharma", "m.das", "a.rao"] {
            assert!(devices.iter().any(|d| d["username"] == writer), "{writer}'s device: {r}");
        }

        // Sixteen days on: NC-07's response is 10 days overdue (level 1); NC-04 is 140 days over.
        let (_, later) = s.get(&format!("{AGEING}?as_of=2026-02-10"), &rao).await?;
        let nc07 = later["ncs"].as_array().and_then(|a| a.iter().find(|n| n["number"] == "NC-07")).context("NC-07")?;
        assert_eq!((nc07["days_overdue"].as_i64(), nc07["escalation"].as_str()), (Some(10), Some("L1")));
        let nc04 = later["ncs"].as_array().and_then(|a| a.iter().find(|n| n["number"] == "NC-04")).context("NC-04")?;
        assert_eq!(nc04["days_overdue"].as_i64(), Some(140));
        assert_eq!(counts(&later, "levels"), pairs(&[("none", 2), ("L1", 1), ("L2", 0), ("L3", 2)]));
        // Before audit 002 reported, only NC-03 had been raised: two days old.
        let (_, early) = s.get(&format!("{AGEING}?as_of=2025-07-20"), &rao).await?;
        assert_eq!(numbers(&early), ["NC-03"]);
        assert_eq!(early["ncs"][0]["bucket"], "0-15");
        assert_eq!(early["ncs"][0]["age_days"], 2);

        // Filters, each by hand: one process, one owner, a clause and those under it, a class.
        for (query, want) in [
            ("process=P08", vec!["NC-05"]),
            ("owner=ao.admin", vec!["NC-04", "NC-06"]),
            ("clause=3.2", vec!["NC-03", "NC-04", "NC-05", "NC-06"]),
            ("clause=3.3", vec!["NC-07"]),
            ("class=major", vec!["NC-05"]),
            ("class=minor&owner=ao.admin&clause=3.2.4", vec!["NC-04"]),
        ] {
            let (status, f) = s.get(&format!("{AGEING}?as_of=2026-01-15&{query}"), &rao).await?;
            assert_eq!(status, StatusCode::OK, "{query}: {f}");
            assert_eq!(numbers(&f), want, "{query}");
        }

        // The CSV says the same: a byte order mark, its date, a header, one line per NC.
        let (status, kind, csv) = text(&s, &format!("{AGEING}?as_of=2026-01-15&format=csv"), &rao).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind, "text/csv; charset=utf-8");
        let body = csv.strip_prefix('\u{feff}').context("UTF-8 with a byte order mark")?;
        let lines: Vec<&str> = body.split("\r\n").collect();
        assert_eq!(lines[0], "NC ageing,as of,2026-01-15,units,DEMO-I DEMO-I-DIV2 DEMO-I-DIV2-R4");
        let header: Vec<&str> = lines[1].split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).with_context(|| format!("no column {name}"));
        let (number, age, overdue, level) = (col("number")?, col("age_days")?, col("days_overdue")?, col("escalation")?);
        let data: Vec<Vec<&str>> = lines[2..].iter().take_while(|l| !l.is_empty()).map(|l| l.split(',').collect()).collect();
        assert_eq!(data.len(), ON_THE_DEMO_DATE.len());
        for want in ON_THE_DEMO_DATE {
            let row = data.iter().find(|r| r[number] == want.number).with_context(|| want.number)?;
            assert_eq!(row[age], want.age_days.to_string(), "{}", want.number);
            assert_eq!(row[overdue], want.days_overdue.map(|d| d.to_string()).unwrap_or_default(), "{}", want.number);
            assert_eq!(row[level], want.escalation.unwrap_or(""), "{}", want.number);
        }
        // ... and so does the printable page, in the dates people read.
        let (status, kind, page) = text(&s, &format!("{AGEING}?as_of=2026-01-15&format=html"), &rao).await?;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(kind, "text/html; charset=utf-8");
        assert!(page.contains("As of 15-01-2026"), "{page}");
        assert!(page.contains("@page { size: A4"), "printable on A4");
        assert_eq!(page.matches("<tr data-nc=").count(), ON_THE_DEMO_DATE.len());
        assert!(page.contains("<td>NC-06</td>") && page.contains("<td>01-08-2025</td>"), "{page}");
        // ... and `sqm report`, byte for byte.
        let printed = sqm(&["report", "nc-ageing", "--unit", "DEMO-I", "--as-of", "2026-01-15", "--format", "csv"])?;
        ensure!(printed.status.success(), "{printed:?}");
        assert_eq!(String::from_utf8(printed.stdout)?, csv);
        let unknown = sqm(&["report", "nc-ageing", "--unit", "NOWHERE"])?;
        assert!(!unknown.status.success());
        assert!(String::from_utf8_lossy(&unknown.stderr).contains("there is no unit NOWHERE"), "{unknown:?}");
        let misfiltered = sqm(&["report", "quarantine", "--unit", "DEMO-I", "--owner", "m.das"])?;
        assert!(!misfiltered.status.success(), "a filter the report does not take is refused, never ignored");
        assert!(String::from_utf8_lossy(&misfiltered.stderr).contains("takes no process, clause, class or owner filter"), "{misfiltered:?}");
        let adherence = sqm(&["report", "programme-adherence", "--unit", "DEMO-I", "--as-of", "2026-01-15", "--format", "csv"])?;
        ensure!(adherence.status.success(), "{adherence:?}");
        assert!(String::from_utf8_lossy(&adherence.stdout).contains("\r\nDEMO-I,2025-06-20,3,3,3,2,0,100\r\n"));

        // Who may read it: the unit's nodal officer and the apex officer above; no process owner, nobody signed out.
        let apex = s.login("v.nair").await?;
        let (status, above) = s.get("/api/v1/reports/units/DGTS/nc-ageing?as_of=2026-01-15", &apex).await?;
        assert_eq!(status, StatusCode::OK, "{above}");
        assert_eq!(numbers(&above), numbers(&r), "the apex officer's units hold the demo unit's NCs");
        let (status, _) = s.get("/api/v1/reports/units/DGTS/nc-ageing", &rao).await?;
        assert_eq!(status, StatusCode::FORBIDDEN, "a unit's officer does not read the units above");
        let owner = s.login("ac.div2").await?;
        let (status, _) = s.get(AGEING, &owner).await?;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, _) = s.call(reqwest::Method::GET, AGEING, None, None).await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // Bad input is named, never guessed at.
        for (query, field) in [
            ("format=pdf", "format"),
            ("clause=3..2", "clause"),
            ("class=observation", "class"),
            ("as_of=15-01-2026", "as_of"),
            ("process=P4", "process"),
        ] {
            let (status, body) = s.get(&format!("{AGEING}?{query}"), &rao).await?;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
            assert!(body["message"].as_str().unwrap_or("").starts_with(field), "{query}: {body}");
        }
        let (status, _) = s.get(&format!("{AGEING}?colour=red"), &rao).await?;
        assert_eq!(status, StatusCode::BAD_REQUEST, "an unknown parameter");
        s.stop().await;
        drop_database(&dir, pg.as_deref()).await;
        Ok(())
    }
}

on_both! {
    async fn a_change_refused_in_the_unit_is_listed_for_its_nodal_officer_as_people_read_it(backend: Backend) -> Result<()> {
        use common::sync_help::{holds, rejections_with};
        let s = TestServer::start(backend).await?;
        let rao = s.login("a.rao").await?;
        let held = "/api/v1/reports/units/DEMO-I/quarantine";
        let (status, before) = s.get(held, &rao).await?;
        assert_eq!(status, StatusCode::OK, "{before}");
        assert_eq!(before["total"], 0, "{before}");

        // M. Das's tablet holds NC-05; then his process owner role ends, and
        // offline, not yet told, he rewrites its correction.
        let nc: String = sqlx::query_scalar("SELECT doc_id FROM ncs WHERE number = 'NC-05'")
            .fetch_one(s.db.pool())
            .await?;
        let nc: sync_core::ids::DocumentId = nc.parse()?;
        let mut tablet = s.tablet("m.das").await?;
        let mut client = s.connect(&mut tablet).await?;
        holds(&s, &mut client, &[nc]).await?;
        tablet.park(client).await;
        let (_, roles) = s.get("/api/v1/admin/units/DEMO-I/roles", &rao).await?;
        let id = roles
            .as_array()
            .and_then(|r| r.iter().find(|a| a["username"] == "m.das" && a["role"] == "process_owner"))
            .and_then(|a| a["id"].as_str())
            .context("m.das's role")?
            .to_owned();
        let (status, _) = s
            .call(reqwest::Method::DELETE, &format!("/api/v1/admin/units/DEMO-I/roles/{id}"), Some(&rao), None)
            .await?;
        assert!(status.is_success(), "{status}");
        tablet.edit_offline(
            nc,
            sync_core::edit::Edit::SetCorrection("Cases re-assigned <b>at once</b>.".into()),
        )?;
        let mut client = s.connect(&mut tablet).await?;
        // No longer the owner, he may no longer see the NC: the server refuses it so.
        let refused = client
            .run_until(Duration::from_secs(20), |c| rejections_with(c, "doc.not_permitted") > 0)
            .await?;
        ensure!(refused, "the server never refused the correction");

        let (status, r) = s.get(held, &rao).await?;
        assert_eq!(status, StatusCode::OK, "{r}");
        assert_eq!(r["total"], 1, "{r}");
        let h = &r["changes"][0];
        assert_eq!(h["username"], "m.das");
        assert_eq!(h["device"], tablet.device.as_str());
        assert_eq!(h["unit"], "DEMO-I");
        assert_eq!(h["doc_id"], nc.to_string());
        assert_eq!(h["rule"], "doc.not_permitted");
        let wrote: Vec<&str> = h["wrote"].as_array().context("wrote")?.iter().filter_map(Value::as_str).collect();
        assert!(wrote.contains(&"set 'correction' to \"Cases re-assigned <b>at once</b>.\""), "{wrote:?}");
        assert!(wrote.iter().any(|l| l.starts_with("set 'correction_at' to \"20")), "{wrote:?}");
        // The printable page escapes what the device wrote; the CSV holds it as it was.
        let (_, _, page) = text(&s, &format!("{held}?format=html"), &rao).await?;
        assert!(page.contains("Cases re-assigned &lt;b&gt;at once&lt;/b&gt;."), "{page}");
        assert!(!page.contains("<b>at once"), "device text is never markup");
        let (_, kind, csv) = text(&s, &format!("{held}?format=csv"), &rao).await?;
        assert_eq!(kind, "text/csv; charset=utf-8");
        assert!(csv.contains("doc.not_permitted") && csv.contains("Cases re-assigned <b>at once</b>."), "{csv}");
        // Nothing was deleted by reading it; the NC's owner, another unit's officer and filters are refused.
        let (_, again) = s.get(held, &rao).await?;
        assert_eq!(again["total"], 1);
        let owner = s.login("ac.div2").await?;
        assert_eq!(s.get(held, &owner).await?.0, StatusCode::FORBIDDEN);
        assert_eq!(s.get(&format!("{held}?owner=m.das"), &rao).await?.0, StatusCode::BAD_REQUEST);
        client.disconnect().await;
        s.stop().await;
        Ok(())
    }
}

on_both! {
    async fn programme_adherence_counts_the_audits_planned_begun_and_reported_as_worked_out_by_hand(backend: Backend) -> Result<()> {
        let s = TestServer::start(backend).await?;
        let rao = s.login("a.rao").await?;
        let adherence = "/api/v1/reports/units/DEMO-I/programme-adherence";
        let figures = |r: &Value| -> Vec<i64> {
            let f = r["figures"]
                .as_array()
                .and_then(|a| a.iter().find(|f| f["unit"] == "DEMO-I"))
                .cloned()
                .unwrap_or_default();
            ["planned", "due", "begun", "reported", "late"]
                .iter()
                .map(|k| f[*k].as_i64().unwrap_or(-1))
                .collect()
        };
        // The demo's 2025-26 programme (approved 20-06-2025): audits 001 (14-07-2025,
        // closed), 002 (22-07-2025, report issued) and 003 (13-01-2026, in review).
        let (status, r) = s.get(&format!("{adherence}?as_of=2026-01-15"), &rao).await?;
        assert_eq!(status, StatusCode::OK, "{r}");
        assert_eq!(r["fy"], "2025-26");
        assert_eq!(figures(&r), [3, 3, 3, 2, 0], "{r}");
        let demo = r["figures"].as_array().and_then(|a| a.iter().find(|f| f["unit"] == "DEMO-I")).context("DEMO-I")?;
        assert_eq!(demo["programme_approved_on"], "2025-06-20");
        assert_eq!(demo["adherence_percent"], 100);
        // On 20-07-2025 only 001 was due (and begun, and its report is issued now);
        // 002 and 003 were still to come.
        let (_, early) = s.get(&format!("{adherence}?as_of=2025-07-20"), &rao).await?;
        assert_eq!(figures(&early), [3, 1, 1, 1, 0], "{early}");

        // A fourth audit planned for 10-02-2026 and not begun: late from that day.
        let (status, body) = s
            .post(
                "/api/v1/admin/units/DEMO-I/audits",
                &rao,
                serde_json::json!({
                    "number": "IA/DEMO-I/2025-26/004",
                    "scope": ["P01"],
                    "planned_from": "2026-02-10",
                    "planned_to": "2026-02-11",
                    "template_version": 2,
                    "lead": "k.iyer",
                    "members": ["s.khan"],
                }),
            )
            .await?;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let (_, before) = s.get(&format!("{adherence}?as_of=2026-02-09"), &rao).await?;
        assert_eq!(figures(&before), [4, 3, 3, 2, 0], "{before}");
        let (_, after) = s.get(&format!("{adherence}?as_of=2026-02-10"), &rao).await?;
        assert_eq!(figures(&after), [4, 4, 3, 2, 1], "{after}");
        let demo = after["figures"].as_array().and_then(|a| a.iter().find(|f| f["unit"] == "DEMO-I")).context("DEMO-I")?;
        assert_eq!(demo["adherence_percent"], 75);
        let late: Vec<&str> = after["audits"]
            .as_array()
            .context("audits")?
            .iter()
            .filter(|a| a["late"] == true)
            .filter_map(|a| a["number"].as_str())
            .collect();
        assert_eq!(late, ["IA/DEMO-I/2025-26/004"]);
        // The next financial year has nothing planned yet.
        let (_, next) = s.get(&format!("{adherence}?as_of=2026-04-01"), &rao).await?;
        assert_eq!(next["fy"], "2026-27");
        assert_eq!(figures(&next), [0, 0, 0, 0, 0]);

        // The CSV and the page say the same.
        let (_, _, csv) = text(&s, &format!("{adherence}?as_of=2026-02-10&format=csv"), &rao).await?;
        assert!(csv.contains("\r\nDEMO-I,2025-06-20,4,4,3,2,1,75\r\n"), "{csv}");
        let (_, _, page) = text(&s, &format!("{adherence}?as_of=2026-02-10&format=html"), &rao).await?;
        assert_eq!(page.matches("class=\"late\"").count(), 1, "{page}");
        assert!(page.contains("10-02-2026 to 11-02-2026"), "{page}");
        // Not a process owner's; and NC filters are refused.
        let owner = s.login("ac.div2").await?;
        assert_eq!(s.get(adherence, &owner).await?.0, StatusCode::FORBIDDEN);
        assert_eq!(s.get(&format!("{adherence}?class=major"), &rao).await?.0, StatusCode::BAD_REQUEST);
        s.stop().await;
        Ok(())
    }
}
