//! Who may do what, from reference data as it is now (DESIGN §2, §4): the
//! sync-core [`Author`] of a user, and the checks of the admin endpoints.
//!
//! Roles are scoped to a unit. Nodal officers and admins also act for every
//! unit below theirs (an apex nodal officer sees the whole zone); auditors
//! and process owners act in their own unit only.

use std::collections::BTreeSet;

use sync_core::automerge::ActorId;
use sync_core::date::Date;
use sync_core::ids::UnitCode;
use sync_core::permissions::{Author, Role, RoleGrant};

use crate::db::reference::{self, Unit};
use crate::db::{Db, DbError, accounts, parse_col};

/// A user's rights as of now: sync-core's author, from the database.
pub async fn author_of(db: &Db, username: &str) -> Result<Author, DbError> {
    let user = parse_col("username", username)?;
    let mut author = Author::new(user);
    let units = reference::units(db).await?;
    author.grants = grants_of(db, username, &units).await?;
    author.audits = reference::teams_of_user(db, username)
        .await?
        .into_iter()
        .collect();
    author.planned = reference::plans_of_user(db, username)
        .await?
        .into_iter()
        .collect();
    author.processes = reference::processes_owned_by(db, username)
        .await?
        .into_iter()
        .collect();
    author.due_rules = reference::due_rules(db.pool()).await?;
    author.actors = accounts::live_actors(db, username)
        .await?
        .iter()
        .map(|hex| parse_col::<ActorId>("actor", hex))
        .collect::<Result<BTreeSet<_>, _>>()?;
    Ok(author)
}

/// A user's rights as of now on one device: changes are accepted only under
/// the actor ids registered to that device (DESIGN §4), so a device cannot
/// send what another device of the same user made unless it is stored.
pub async fn author_on_device(db: &Db, username: &str, device: &str) -> Result<Author, DbError> {
    let mut author = author_of(db, username).await?;
    author.actors = device_actors(db, username, device).await?;
    Ok(author)
}

/// The live actor ids of one device of a user.
pub async fn device_actors(
    db: &Db,
    username: &str,
    device: &str,
) -> Result<BTreeSet<ActorId>, DbError> {
    Ok(actors_by_device(db, username)
        .await?
        .remove(device)
        .unwrap_or_default())
}

/// The live actor ids of each of a user's devices.
pub async fn actors_by_device(
    db: &Db,
    username: &str,
) -> Result<std::collections::HashMap<String, BTreeSet<ActorId>>, DbError> {
    let mut out: std::collections::HashMap<String, BTreeSet<ActorId>> =
        std::collections::HashMap::new();
    for (device, hex) in accounts::live_actors_by_device(db, username).await? {
        out.entry(device)
            .or_default()
            .insert(parse_col::<ActorId>("actor", &hex)?);
    }
    Ok(out)
}

/// A user's role grants, with nodal officer and admin roles carried down the unit tree.
pub async fn grants_of(db: &Db, username: &str, units: &[Unit]) -> Result<Vec<RoleGrant>, DbError> {
    let mut grants = Vec::new();
    for a in accounts::assignments_of_user(db, username).await? {
        let scope = match a.role {
            Role::NodalOfficer | Role::Admin => reference::subtree(units, a.unit.as_str()),
            Role::Auditor | Role::ProcessOwner => vec![a.unit.to_string()],
        };
        for unit in scope {
            grants.push(RoleGrant {
                unit: parse_col("unit", &unit)?,
                role: a.role,
                from: a.valid_from,
                until: a.valid_until,
            });
        }
    }
    Ok(grants)
}

/// Whether the grants give one of `roles` in `unit` on `today`.
pub fn holds(grants: &[RoleGrant], unit: &UnitCode, roles: &[Role], today: Date) -> bool {
    grants
        .iter()
        .any(|g| &g.unit == unit && roles.contains(&g.role) && g.in_force(today))
}

/// The units in which the grants give any role on `today`.
pub fn units_of(grants: &[RoleGrant], today: Date) -> BTreeSet<UnitCode> {
    grants
        .iter()
        .filter(|g| g.in_force(today))
        .map(|g| g.unit.clone())
        .collect()
}

/// Today in the offices' calendar (IST), by the server's clock.
pub fn today() -> Date {
    Date::in_offices(sync_core::date::Timestamp(crate::db::now_ms()))
}
