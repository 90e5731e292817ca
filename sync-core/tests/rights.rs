//! Who may read, create and write what, for every document kind and every
//! demo person, against tables written by hand from DESIGN §2: an audit is
//! its team's and its unit's nodal officers'; an NC also its process
//! owner's; a review the nodal officers' alone. The demo NC is on P03,
//! owned by `owner`; `lead` and `member` are the audit's team.

use sync_core::DocKind;
use sync_core::permissions::{
    Author, DocContext, Field, Target, check_create, check_field, may_edit,
};
use sync_core::testing::fixtures::Demo;

const PEOPLE: [&str; 5] = ["lead", "member", "owner", "nodal", "outsider"];

fn person<'a>(demo: &'a Demo, name: &str) -> &'a Author {
    match name {
        "lead" => &demo.lead,
        "member" => &demo.member,
        "owner" => &demo.owner,
        "nodal" => &demo.nodal,
        _ => &demo.outsider,
    }
}

fn context(demo: &Demo, kind: DocKind) -> DocContext {
    let unit = demo.unit.clone();
    match kind {
        DocKind::Audit => DocContext {
            kind,
            id: demo.audit_id,
            unit,
            audit: Some(demo.audit_id),
            process: None,
        },
        DocKind::Nc => DocContext {
            kind,
            id: demo.nc_id,
            unit,
            audit: Some(demo.audit_id),
            process: Some("P03".parse().expect("code")),
        },
        DocKind::Review => DocContext {
            kind,
            id: demo.review_id,
            unit,
            audit: None,
            process: None,
        },
    }
}

#[test]
fn each_kind_is_read_by_exactly_the_people_the_design_names() {
    let demo = Demo::new();
    let readers: [(DocKind, &[&str]); 3] = [
        (DocKind::Audit, &["lead", "member", "nodal"]),
        (DocKind::Nc, &["lead", "member", "owner", "nodal"]),
        (DocKind::Review, &["nodal"]),
    ];
    for (kind, who) in readers {
        let ctx = context(&demo, kind);
        for name in PEOPLE {
            let reads = person(&demo, name).may_read(&ctx, demo.today);
            assert_eq!(reads, who.contains(&name), "{name} reading a {kind:?}");
        }
        // Nobody reads a document of another unit.
        let mut elsewhere = ctx.clone();
        elsewhere.unit = "OTHER".parse().expect("code");
        for name in PEOPLE {
            assert!(
                !person(&demo, name).may_read(&elsewhere, demo.today),
                "{name}"
            );
        }
    }
}

#[test]
fn each_kind_is_created_by_exactly_the_people_the_design_names() {
    let demo = Demo::new();
    let creators: [(DocKind, &[&str]); 3] = [
        (DocKind::Audit, &["lead"]),
        (DocKind::Nc, &["lead", "member"]),
        (DocKind::Review, &["nodal"]),
    ];
    for (kind, who) in creators {
        let ctx = context(&demo, kind);
        for name in PEOPLE {
            let made = check_create(&ctx, person(&demo, name), demo.today);
            match made {
                Ok(()) => assert!(who.contains(&name), "{name} created a {kind:?}"),
                Err(r) => {
                    assert!(!who.contains(&name), "{name} may create a {kind:?}: {r}");
                    assert_eq!(r.rule, "doc.create");
                    assert!(
                        r.message.contains(&person(&demo, name).user.to_string()),
                        "{r}"
                    );
                }
            }
        }
    }
}

#[test]
fn each_field_is_written_by_exactly_the_people_the_design_names_and_refusals_name_it() {
    let demo = Demo::new();
    let writers: [(DocKind, Field, &[&str], &str, &str); 9] = [
        (
            DocKind::Audit,
            Field::AuditHeader,
            &["lead"],
            "audit.header",
            "the audit header",
        ),
        (
            DocKind::Audit,
            Field::AuditContent,
            &["lead", "member"],
            "audit.content",
            "the checklist, findings and notes",
        ),
        (
            DocKind::Nc,
            Field::NcDescription,
            &["lead", "member"],
            "nc.description",
            "the NC description",
        ),
        (
            DocKind::Nc,
            Field::NcOwnerFields,
            &["owner"],
            "nc.owner_fields",
            "the correction, root cause and actions",
        ),
        (
            DocKind::Nc,
            Field::NcVerification,
            &["lead", "member"],
            "nc.verification",
            "the verification",
        ),
        (
            DocKind::Nc,
            Field::NcExtension,
            &["nodal"],
            "nc.extension",
            "due-date extensions",
        ),
        (
            DocKind::Nc,
            Field::NcImplementationEvidence,
            &["owner"],
            "nc.owner_fields",
            "the implementation evidence",
        ),
        (
            DocKind::Nc,
            Field::NcVerificationEvidence,
            &["lead", "member"],
            "nc.verification",
            "the verification evidence",
        ),
        (
            DocKind::Review,
            Field::ReviewContent,
            &["nodal"],
            "review.content",
            "the management review",
        ),
    ];
    for (kind, field, who, rule, words) in writers {
        let ctx = context(&demo, kind);
        for name in PEOPLE {
            match check_field(&ctx, person(&demo, name), field, demo.today) {
                Ok(()) => assert!(who.contains(&name), "{name} wrote {field}"),
                Err(r) => {
                    assert!(!who.contains(&name), "{name} may write {field}: {r}");
                    assert_eq!(r.rule, rule);
                    assert!(r.message.contains(words), "{r}");
                }
            }
        }
    }
}

#[test]
fn a_locked_audit_offers_its_content_to_nobody_and_its_header_to_its_lead() {
    let demo = Demo::new();
    let mut doc = demo.audit();
    demo.lock(&mut doc);
    for name in ["lead", "member"] {
        let r = may_edit(
            &doc,
            person(&demo, name),
            Target::Field(Field::AuditContent),
            demo.today,
        )
        .expect_err("locked");
        assert_eq!(r.rule, "audit.locked", "{name}");
    }
    assert_eq!(
        may_edit(
            &doc,
            &demo.lead,
            Target::Field(Field::AuditHeader),
            demo.today
        ),
        Ok(())
    );
    // The same content before the lock is offered to the team.
    let open = demo.audit();
    assert_eq!(
        may_edit(
            &open,
            &demo.member,
            Target::Field(Field::AuditContent),
            demo.today
        ),
        Ok(())
    );
    // An NC of the locked audit is not locked with it.
    assert_eq!(
        may_edit(
            &demo.nc(),
            &demo.member,
            Target::Field(Field::NcDescription),
            demo.today
        ),
        Ok(())
    );
}

/// Each part of an NC is offered to its writer at its step alone, by a
/// table written from the SQM's NC procedure: the description while the NC
/// is drafted or open, the plan while it is open, the actions' completion
/// and their evidence once the plan is accepted, the verification once the
/// actions are reported done, extensions while a due date runs, and
/// nothing once the NC is closed or withdrawn.
#[test]
fn each_part_of_an_nc_is_offered_to_its_writer_at_its_step_alone() {
    use sync_core::workflow::NcState::{self, *};
    let demo = Demo::new();
    let parts: [(Field, &Author, &[NcState]); 6] = [
        (Field::NcDescription, &demo.member, &[Draft, Open]),
        (Field::NcOwnerFields, &demo.owner, &[Open, PlanAccepted]),
        (
            Field::NcImplementationEvidence,
            &demo.owner,
            &[PlanAccepted],
        ),
        (Field::NcVerification, &demo.member, &[Implemented]),
        (Field::NcVerificationEvidence, &demo.member, &[Implemented]),
        (Field::NcExtension, &demo.nodal, &[Open, PlanAccepted]),
    ];
    for state in NcState::ALL {
        let doc = demo.nc_in(*state);
        for (field, writer, at) in parts {
            let r = may_edit(&doc, writer, Target::Field(field), demo.today);
            if at.contains(state) {
                assert_eq!(r, Ok(()), "{field} while {state}");
            } else {
                assert_eq!(
                    r.expect_err("not offered").rule,
                    "nc.step",
                    "{field} while {state}"
                );
            }
        }
        // Whoever else asks is told it is not theirs, at any step.
        let r = may_edit(
            &doc,
            &demo.member,
            Target::Field(Field::NcOwnerFields),
            demo.today,
        );
        assert_eq!(
            r.expect_err("not the owner's").rule,
            "nc.owner_fields",
            "{state}"
        );
    }
}

/// An NC on a clause no process carries (3.4, management review) names no
/// process: the unit's nodal officer answers it as a process owner would,
/// no process owner reads or writes it, and the team verifies it.
#[test]
fn an_nc_on_no_process_is_answered_by_the_units_nodal_officer() {
    let demo = Demo::new();
    let ctx = DocContext {
        process: None,
        ..context(&demo, DocKind::Nc)
    };
    let readers = ["lead", "member", "nodal"];
    let writers: [(Field, &[&str]); 6] = [
        (Field::NcDescription, &["lead", "member"]),
        (Field::NcOwnerFields, &["nodal"]),
        (Field::NcImplementationEvidence, &["nodal"]),
        (Field::NcVerification, &["lead", "member"]),
        (Field::NcVerificationEvidence, &["lead", "member"]),
        (Field::NcExtension, &["nodal"]),
    ];
    for name in PEOPLE {
        let author = person(&demo, name);
        assert_eq!(
            author.may_read(&ctx, demo.today),
            readers.contains(&name),
            "{name} reads"
        );
        for (field, who) in writers {
            assert_eq!(
                check_field(&ctx, author, field, demo.today).is_ok(),
                who.contains(&name),
                "{name} writes {field}"
            );
        }
    }
}

#[test]
fn the_nodal_officer_responds_to_an_nc_on_no_process_and_the_team_verifies_it() {
    use sync_core::edit::Edit;
    use sync_core::nc::{Action, EvidenceOf, Nc};
    use sync_core::workflow::NcState;
    let demo = Demo::new();
    let mut doc = automerge::Automerge::new();
    let link = sync_core::nc::NcLink {
        process: None,
        clause: "3.4".parse().expect("clause"),
        finding: "f-14".parse().expect("id"),
        ..demo.nc_link()
    };
    let id = demo.nc_id;
    demo.must(
        id,
        &mut doc,
        &demo.member,
        Edit::CreateNc {
            link,
            description: "MR minutes lack decisions on resources".into(),
            provisional: "D-IYER-01".into(),
        },
    );
    let mv = |mv: &str| Edit::Move {
        mv: mv.into(),
        note: String::new(),
    };
    let action = |done_on| Edit::PutAction {
        id: "a-1".parse().expect("id"),
        action: Action {
            text: "Resources a standing agenda item".into(),
            owner: "Addl Commissioner".into(),
            target: "2026-02-15".parse().expect("date"),
            done_on,
        },
    };
    demo.must(id, &mut doc, &demo.member, mv("raise"));
    let refused = demo
        .edit(
            id,
            &mut doc,
            &demo.owner,
            Edit::SetCorrection("Not mine".into()),
        )
        .expect_err("no process owner answers it");
    assert_eq!(refused.rule, "nc.owner_fields");
    for edit in [
        Edit::SetCorrection("Resources discussed at MR-2".into()),
        Edit::SetRootCause("No agenda item for resources".into()),
        action(None),
        mv("submit_response"),
    ] {
        demo.must(id, &mut doc, &demo.nodal, edit);
    }
    demo.must(id, &mut doc, &demo.lead, mv("accept_plan"));
    demo.must(id, &mut doc, &demo.nodal, action(Some(demo.today)));
    demo.must(
        id,
        &mut doc,
        &demo.nodal,
        Edit::AttachNcEvidence {
            of: EvidenceOf::Implementation,
            file: Demo::scan("mr-2-agenda.pdf", 0x21),
        },
    );
    demo.must(id, &mut doc, &demo.nodal, mv("mark_implemented"));
    demo.must(
        id,
        &mut doc,
        &demo.member,
        Edit::SetVerification {
            note: "MR-2 agenda and minutes seen".into(),
            on: demo.today,
        },
    );
    demo.must(id, &mut doc, &demo.member, mv("verify_effective"));
    let nc = Nc::read(&doc).expect("reads");
    assert_eq!(nc.link.process, None);
    assert_eq!(
        nc.view(&Default::default(), demo.today).state,
        NcState::Closed
    );
}
