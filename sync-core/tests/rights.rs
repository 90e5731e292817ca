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
