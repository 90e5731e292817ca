//! Who may manage an account (set its password, disable or enable it, end
//! its sessions, revoke its devices, give it a role).
//!
//! The rule: a caller may manage an account only if the caller could give
//! every role the account holds. Giving the auditor or process owner role in
//! a unit takes a nodal officer or admin there; giving the nodal officer or
//! admin role takes an admin there (roles of a unit reach the units below).
//! So an admin is managed only by admins above it, and a nodal officer
//! manages only accounts whose every role lies in units under them. Anything
//! weaker lets a steward take an account with more rights than their own: a
//! nodal officer who could set the password of anyone holding *some* role in
//! their unit could give an admin the auditor role there and then sign in as
//! that admin.
//!
//! Which roles count: those in force today and those still to come (a nodal
//! officer must not take an account the day before its admin role begins);
//! not those that ended before today, nor cancelled ones (last day before the
//! first), which give no right any more.
//!
//! An account that holds no such role is managed by admins and by the
//! steward who made it through the API. Its maker chose its first password,
//! so letting them give it a first role or reset it gains them nothing they
//! did not have; any other nodal officer could otherwise take an account an
//! admin made and is about to promote. Accounts made with `sqm user add` (the
//! operator's command line, which stays unrestricted) have no maker here.

use sync_core::permissions::Role;

use super::{STEWARDS, Steward};
use crate::auth::Caller;
use crate::db::accounts::{self, Assignment};
use crate::http::AppState;
use crate::http::error::ApiError;

/// Whether an assignment still gives, or will give, its role on or after `today`.
fn counts(a: &Assignment, today: sync_core::date::Date) -> bool {
    a.valid_until
        .is_none_or(|until| until >= today && until >= a.valid_from)
}

/// The rule, over the caller's grants today, the account's role assignments
/// and who made the account.
pub fn may_manage(steward: &Steward, held: &[Assignment], made_by: Option<&str>) -> bool {
    let mut counted = held.iter().filter(|a| counts(a, steward.today)).peekable();
    if counted.peek().is_none() {
        return steward.holds_anywhere(&[Role::Admin])
            || made_by == Some(steward.username.as_str());
    }
    counted.all(|a| steward.may_grant(&a.unit, a.role))
}

/// 403 unless the caller is a nodal officer or admin; then 404 if there is
/// no such account; then 403 unless [`may_manage`] allows it. Returns the
/// caller's grants for further checks.
pub async fn require(
    state: &AppState,
    caller: &Caller,
    username: &str,
) -> Result<Steward, ApiError> {
    let steward = Steward::of(state, caller).await?;
    // Only those who manage accounts learn whether one exists.
    if !steward.holds_anywhere(STEWARDS) {
        return Err(ApiError::Forbidden(
            "Only nodal officers and admins may manage accounts.".into(),
        ));
    }
    if accounts::find_user(&state.db, username).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "There is no account named {username}."
        )));
    }
    require_found(state, &steward, username).await?;
    Ok(steward)
}

/// 403 unless [`may_manage`] allows the steward to manage an existing account.
pub async fn require_found(
    state: &AppState,
    steward: &Steward,
    username: &str,
) -> Result<(), ApiError> {
    let held = accounts::assignments_of_user(&state.db, username).await?;
    let made_by = accounts::made_by(&state.db, username).await?;
    if may_manage(steward, &held, made_by.as_deref()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "You may not manage {username}: they hold a role that you could not give."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sync_core::date::Date;
    use sync_core::permissions::RoleGrant;

    fn date(s: &str) -> Date {
        s.parse()
            .unwrap_or_else(|_| Date::in_offices(sync_core::date::Timestamp(0)))
    }

    fn steward(grants: &[(&str, Role)]) -> Steward {
        Steward::with(
            "me",
            grants
                .iter()
                .map(|(unit, role)| RoleGrant {
                    unit: unit.parse().unwrap_or_else(|_| unreachable!()),
                    role: *role,
                    from: date("2020-01-01"),
                    until: None,
                })
                .collect(),
            date("2026-03-01"),
        )
    }

    fn held(unit: &str, role: Role, from: &str, until: Option<&str>) -> Assignment {
        Assignment {
            id: "a".into(),
            username: "them".parse().unwrap_or_else(|_| unreachable!()),
            unit: unit.parse().unwrap_or_else(|_| unreachable!()),
            role,
            valid_from: date(from),
            valid_until: until.map(date),
            office_order: "OO".into(),
        }
    }

    #[test]
    fn ended_and_cancelled_roles_do_not_count_and_roles_to_come_do() {
        let nodal = steward(&[("U", Role::NodalOfficer)]);
        let auditor = held("U", Role::Auditor, "2020-01-01", None);
        let admin = |from, until| held("U", Role::Admin, from, until);
        let ended = admin("2020-01-01", Some("2026-02-28"));
        let last_day_today = admin("2020-01-01", Some("2026-03-01"));
        let to_come = admin("2026-04-01", None);
        let cancelled = admin("2026-04-01", Some("2026-03-31"));
        assert!(may_manage(&nodal, &[auditor.clone(), ended], None));
        assert!(may_manage(&nodal, &[auditor.clone(), cancelled], None));
        assert!(!may_manage(
            &nodal,
            &[auditor.clone(), last_day_today],
            None
        ));
        assert!(!may_manage(&nodal, &[auditor, to_come], None));
    }

    #[test]
    fn an_account_without_roles_is_its_makers_and_the_admins() {
        let nodal = steward(&[("U", Role::NodalOfficer)]);
        let admin = steward(&[("TOP", Role::Admin)]);
        assert!(!may_manage(&nodal, &[], None));
        assert!(!may_manage(&nodal, &[], Some("someone")));
        assert!(may_manage(&nodal, &[], Some("me")));
        assert!(may_manage(&admin, &[], None));
    }
}
