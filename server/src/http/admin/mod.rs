//! Administration by nodal officers and admins, each call authorized by the
//! caller's role in the unit concerned (roles of a unit reach the units below
//! it). A process owner or auditor may call none of these; a nodal officer of
//! another unit sees nothing of this one.

pub mod audits;
pub mod devices;
pub mod due_rules;
pub mod manage;
pub mod processes;
pub mod programmes;
pub mod roles;
pub mod templates;
pub mod users;

use sync_core::date::Date;
use sync_core::ids::UnitCode;
use sync_core::permissions::{Role, RoleGrant};

use super::AppState;
use super::error::ApiError;
use super::extract::parse_field;
use crate::access;
use crate::auth::Caller;

/// The roles that administer a unit.
pub const STEWARDS: &[Role] = &[Role::NodalOfficer, Role::Admin];

/// The caller with their grants as of today.
#[derive(Debug)]
pub struct Steward {
    /// The caller.
    pub username: String,
    grants: Vec<RoleGrant>,
    /// Today (IST).
    pub today: Date,
}

impl Steward {
    /// The caller's grants.
    pub async fn of(state: &AppState, caller: &Caller) -> Result<Steward, ApiError> {
        let units = crate::db::reference::units(&state.db).await?;
        Ok(Steward {
            username: caller.username.clone(),
            grants: access::grants_of(&state.db, &caller.username, &units).await?,
            today: access::today(),
        })
    }

    /// A steward with these grants (tests of the rules).
    #[cfg(test)]
    pub(crate) fn with(username: &str, grants: Vec<RoleGrant>, today: Date) -> Steward {
        Steward {
            username: username.to_owned(),
            grants,
            today,
        }
    }

    /// Whether the caller could give (or end) `role` in `unit` today: the
    /// auditor and process owner roles take a nodal officer or admin there,
    /// the nodal officer and admin roles an admin.
    pub fn may_grant(&self, unit: &UnitCode, role: Role) -> bool {
        self.holds(unit, granters_of(role))
    }

    /// The caller's grants (those of nodal officers and admins reach the
    /// units below theirs).
    pub fn grants(&self) -> &[RoleGrant] {
        &self.grants
    }

    /// Whether the caller holds one of `roles` in `unit` today.
    pub fn holds(&self, unit: &UnitCode, roles: &[Role]) -> bool {
        access::holds(&self.grants, unit, roles, self.today)
    }

    /// Whether the caller holds one of `roles` in any unit today.
    pub fn holds_anywhere(&self, roles: &[Role]) -> bool {
        self.grants
            .iter()
            .any(|g| roles.contains(&g.role) && g.in_force(self.today))
    }

    /// 403 unless the caller holds one of `roles` in `unit`.
    pub fn require(&self, unit: &UnitCode, roles: &[Role], doing: &str) -> Result<(), ApiError> {
        if self.holds(unit, roles) {
            Ok(())
        } else {
            let names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
            Err(ApiError::Forbidden(format!(
                "You may not {doing} in {unit}: that needs the role {} there.",
                names.join(" or ")
            )))
        }
    }
}

/// The roles that may give `role`.
pub fn granters_of(role: Role) -> &'static [Role] {
    match role {
        Role::Auditor | Role::ProcessOwner => STEWARDS,
        Role::NodalOfficer | Role::Admin => &[Role::Admin],
    }
}

/// Parses the unit of a path.
pub fn unit_of(text: &str) -> Result<UnitCode, ApiError> {
    parse_field("unit", text)
}
