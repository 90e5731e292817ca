//! The checklist's own rules (issue 15, item 5), as a table: an audit goes to
//! review only when every required item of its pinned checklist is
//! answered, a conditional item only when its condition holds, and every
//! shortfall on an item that needs objective evidence has some (a note or a
//! file). The tablet (`apply_edit`) and the server (`validate_batch`) give
//! the same answer, and the refusal names the items.

use automerge::Automerge;
use sync_core::audit::{Answer, Cpna, Evidence, YesNo};
use sync_core::checklist::{Checklist, Gap, Required, TemplateItem};
use sync_core::edit::Edit;
use sync_core::ids::{ProcessCode, ResponseKey};
use sync_core::testing::fixtures::Demo;
use sync_core::validate::validate_batch;

fn item(key: &str, clause: &str, answer: &str, evidence: bool, required: Required) -> TemplateItem {
    TemplateItem {
        key: key.parse().expect("a key"),
        clause: clause.into(),
        answer: answer.into(),
        evidence,
        per_process: clause == "3.2.1",
        required,
    }
}

fn when(item: &str, answers: &[&str]) -> Required {
    Required::When {
        item: item.parse().expect("a key"),
        answers: answers.iter().map(|a| (*a).to_owned()).collect(),
    }
}

/// Version 2's rules that matter here, for the demo audit (P03, P04, P08, 3.4; 2.4 added).
fn checklist() -> Checklist {
    let template = [
        item("grv.ack", "2.4", "cpna", true, Required::Always),
        item(
            "grv.sample",
            "2.4",
            "number",
            false,
            when("grv.ack", &["not_conform"]),
        ),
        item("sd.timeliness", "3.2.1", "cpna", true, Required::Always),
        item(
            "sd.late_cases",
            "3.2.1",
            "number",
            false,
            when("sd.timeliness", &["partly", "not_conform"]),
        ),
        item("mgt.nodal", "3.1", "yn", true, Required::Always),
        item("mr.held", "3.4", "cpna", false, Required::Always),
        item("gen.remarks", "", "text", false, Required::Optional),
    ];
    let scope: Vec<String> = ["P03", "P04", "P08", "3.4", "2.4"]
        .map(String::from)
        .to_vec();
    Checklist::resolve(2, &template, &scope, |p: &ProcessCode| {
        Some(
            match p.as_str() {
                "P03" => "3.2.1.3",
                "P04" => "3.2.1.4",
                _ => "3.2.3",
            }
            .into(),
        )
    })
}

fn key(k: &str) -> ResponseKey {
    k.parse().expect("a key")
}

fn set(k: &str, answer: Answer, note: &str, files: usize) -> Edit {
    Edit::SetResponse {
        key: key(k),
        answer,
        note: note.into(),
        evidence: (0..files)
            .map(|n| Evidence {
                sha256: format!("{:064x}", n + 1).parse().expect("a hash"),
                name: format!("scan-{n}.pdf"),
                mime: "application/pdf".into(),
                size: 2048,
                taken_at: None,
            })
            .collect(),
    }
}

fn submit() -> Edit {
    Edit::Move {
        mv: "submit_for_review".into(),
        note: String::new(),
    }
}

/// The demo audit, started, with these answers given by the member.
fn started_with(demo: &Demo, answers: &[Edit]) -> Automerge {
    let mut doc = demo.audit();
    demo.must(
        demo.audit_id,
        &mut doc,
        &demo.lead,
        Edit::Move {
            mv: "start".into(),
            note: String::new(),
        },
    );
    for a in answers {
        demo.must(demo.audit_id, &mut doc, &demo.member, a.clone());
    }
    doc
}

/// Submits for review on the tablet and through the server's validator:
/// both must agree; the refusal's message, if refused.
fn try_submit(demo: &Demo, doc: &Automerge) -> Result<(), String> {
    let mut tablet = doc.clone();
    let on_tablet = demo.edit(demo.audit_id, &mut tablet, &demo.lead, submit());
    // The same move made by a tablet that knows no checklist rules, judged by the server.
    let mut raw = doc.clone();
    Demo::new().must(demo.audit_id, &mut raw, &Demo::new().lead, submit());
    let batch = raw.get_changes(&doc.get_heads());
    let on_server = validate_batch(demo.audit_id, doc, batch, &demo.lead, demo.today);
    match (on_tablet, on_server) {
        (Ok(_), Ok(_)) => Ok(()),
        (Err(t), Err(s)) => {
            assert_eq!(t.rule, "audit.checklist", "{t}");
            assert_eq!(
                (t.rule, &t.message),
                (s.rule, &s.message),
                "tablet and server agree"
            );
            Err(t.message)
        }
        (t, s) => panic!("the tablet said {t:?}, the server {:?}", s.map(|_| ())),
    }
}

/// Everything required, answered conform (the conditional items are then not required).
fn complete() -> Vec<Edit> {
    vec![
        set("grv.ack", Answer::Cpna(Cpna::Conform), "", 0),
        set("sd.timeliness@P03", Answer::Cpna(Cpna::Conform), "", 0),
        set("sd.timeliness@P04", Answer::Cpna(Cpna::Conform), "", 0),
        set("mr.held", Answer::Cpna(Cpna::Conform), "", 0),
    ]
}

#[test]
fn the_checklist_is_resolved_for_the_audits_scope() {
    let keys: Vec<String> = checklist().items.keys().map(ToString::to_string).collect();
    assert_eq!(
        keys,
        [
            "gen.remarks",
            "grv.ack",
            "grv.sample",
            "mr.held",
            "sd.late_cases@P03",
            "sd.late_cases@P04",
            "sd.timeliness@P03",
            "sd.timeliness@P04",
        ],
        "mgt.nodal (3.1) is out of scope"
    );
    let late = checklist()
        .rule(&key("sd.late_cases@P04"))
        .cloned()
        .expect("the late count of P04");
    assert_eq!(late.answer, "number");
    assert_eq!(
        late.required,
        sync_core::checklist::Condition::When(
            key("sd.timeliness@P04"),
            vec!["partly".into(), "not_conform".into()]
        )
    );
    assert_eq!(checklist().rule(&key("mgt.nodal")), None);
}

/// A checklist of `n` required items, none answered.
fn many(n: usize) -> Checklist {
    let items = (0..n)
        .map(|i| {
            (
                key(&format!("gen.item_{i:02}")),
                sync_core::checklist::ItemRule {
                    answer: "cpna".into(),
                    evidence: false,
                    required: sync_core::checklist::Condition::Always,
                },
            )
        })
        .collect();
    Checklist { version: 2, items }
}

#[test]
fn the_refusal_names_twenty_items_and_counts_the_rest() {
    for (n, tail) in [
        (20, "gen.item_19 is not answered."),
        (21, "gen.item_19 is not answered; and 1 more."),
        (25, "gen.item_19 is not answered; and 5 more."),
    ] {
        let demo = Demo::new().with_checklist(many(n));
        let message = try_submit(&demo, &started_with(&demo, &[])).expect_err("gaps");
        assert!(message.ends_with(tail), "{n}: {message}");
        assert_eq!(message.matches(" is not answered").count(), 20, "{message}");
    }
}

/// A case: what, the answers given, and the gaps the refusal names (or none).
type Case<'a> = (&'a str, Vec<Edit>, Result<(), Vec<&'a str>>);

#[test]
fn an_audit_goes_to_review_only_with_its_checklist_complete() {
    let demo = Demo::new().with_checklist(checklist());
    let complete = complete();
    let mut short_p04 = complete.clone();
    short_p04[2] = set(
        "sd.timeliness@P04",
        Answer::Cpna(Cpna::Partly),
        "2 of 10 late",
        0,
    );
    let mut late_counted = short_p04.clone();
    late_counted.push(set("sd.late_cases@P04", Answer::Number(2), "", 0));
    let mut ack_not = complete.clone();
    ack_not[0] = set("grv.ack", Answer::Cpna(Cpna::NotConform), "", 1);
    let mut ack_not_sampled = ack_not.clone();
    ack_not_sampled.push(set("grv.sample", Answer::Number(12), "", 0));
    let mut ack_not_bare = ack_not_sampled.clone();
    ack_not_bare[0] = set("grv.ack", Answer::Cpna(Cpna::NotConform), " ", 0);
    let mut ack_partly_noted = ack_not_bare.clone();
    ack_partly_noted[0] = set(
        "grv.ack",
        Answer::Cpna(Cpna::Partly),
        "3 of 12 acknowledged on day 5",
        0,
    );
    let mut na = complete.clone();
    na[3] = set("mr.held", Answer::Cpna(Cpna::NotApplicable), "", 0);

    let table: Vec<Case<'_>> = vec![
        (
            "nothing answered",
            vec![],
            Err(vec![
                "grv.ack is not answered",
                "mr.held is not answered",
                "sd.timeliness@P03 is not answered",
                "sd.timeliness@P04 is not answered",
            ]),
        ),
        ("every required item conform", complete.clone(), Ok(())),
        ("not applicable is an answer", na, Ok(())),
        (
            "one left out",
            complete[..3].to_vec(),
            Err(vec!["mr.held is not answered"]),
        ),
        (
            "a late count is required for a process answered partly, and only for it",
            short_p04,
            Err(vec!["sd.late_cases@P04 is not answered"]),
        ),
        ("with the late count", late_counted, Ok(())),
        (
            "the sample is required once acknowledgement is not conform",
            ack_not,
            Err(vec!["grv.sample is not answered"]),
        ),
        ("with the sample", ack_not_sampled, Ok(())),
        (
            "a shortfall on an evidence item with neither note nor file",
            ack_not_bare,
            Err(vec!["grv.ack needs objective evidence"]),
        ),
        (
            "a note is objective evidence in words (partly does not call for the sample)",
            ack_partly_noted,
            Ok(()),
        ),
    ];
    for (case, answers, expected) in table {
        let doc = started_with(&demo, &answers);
        let got = try_submit(&demo, &doc);
        match expected {
            Ok(()) => assert_eq!(got, Ok(()), "{case}"),
            Err(gaps) => {
                let message = got.expect_err(case);
                assert_eq!(
                    message,
                    format!(
                        "'submit_for_review' needs every required checklist item answered, with evidence for each shortfall that needs it first: {}.",
                        gaps.join("; ")
                    ),
                    "{case}"
                );
            }
        }
    }
}

#[test]
fn a_yes_no_item_answered_no_is_a_shortfall_too() {
    let c = Checklist::resolve(
        2,
        &[item("mgt.nodal", "3.1", "yn", true, Required::Always)],
        &["3.1".to_owned()],
        |_: &ProcessCode| None,
    );
    let response = |answer, note: &str| sync_core::audit::Response {
        answer,
        note: note.into(),
        evidence: vec![],
        by: "k.iyer".parse().expect("a user"),
        at: "2026-01-13T10:00:00Z".parse().expect("a time"),
    };
    let gaps = |answer, note| c.gaps(&[(key("mgt.nodal"), response(answer, note))].into());
    assert_eq!(
        gaps(Answer::YesNo(YesNo::No), ""),
        [Gap::NeedsEvidence(key("mgt.nodal"))]
    );
    assert_eq!(gaps(Answer::YesNo(YesNo::No), "no office order"), []);
    assert_eq!(gaps(Answer::YesNo(YesNo::Yes), ""), []);
}

#[test]
fn returned_for_edit_the_audit_is_checked_again_when_resubmitted() {
    let demo = Demo::new().with_checklist(checklist());
    let mut doc = started_with(&demo, &complete());
    demo.must(demo.audit_id, &mut doc, &demo.lead, submit());
    demo.must(
        demo.audit_id,
        &mut doc,
        &demo.lead,
        Edit::Move {
            mv: "return_for_edit".into(),
            note: "The P04 sample needs a second look.".into(),
        },
    );
    demo.must(
        demo.audit_id,
        &mut doc,
        &demo.member,
        set("sd.timeliness@P04", Answer::Cpna(Cpna::NotConform), "", 0),
    );
    let message = try_submit(&demo, &doc).expect_err("gaps again");
    assert!(
        message.ends_with(
            ": sd.late_cases@P04 is not answered; sd.timeliness@P04 needs objective evidence."
        ),
        "{message}"
    );
}

#[test]
fn an_answer_is_never_refused_for_a_gap_only_the_move_is() {
    // The auditor may answer short first and add the photo later, offline.
    let demo = Demo::new().with_checklist(checklist());
    let mut doc = started_with(&demo, &[]);
    demo.must(
        demo.audit_id,
        &mut doc,
        &demo.member,
        set("grv.ack", Answer::Cpna(Cpna::NotConform), "", 0),
    );
}
