//! One simulated tablet: signed in over HTTP as a real tablet is (login,
//! device registration, the reference bundle with its rights and audits), a
//! device engine under its registered actor, and its sync client.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};
use sync_core::audit::AuditHeader;
use sync_core::automerge::{ActorId, ChangeHash};
use sync_core::date::Timestamp;
use sync_core::edit::Edit;
use sync_core::engine::{Effect, Engine, Input, Side};
use sync_core::ids::DocumentId;
use sync_core::permissions::{Author, RoleGrant};

use super::http::Http;
use crate::client::Client;
use crate::db::now_ms;

/// A refresh is asked for once the access token is this old (it lives 15 minutes).
const TOKEN_AGE: Duration = Duration::from_secs(10 * 60);

/// A simulated tablet.
#[derive(Debug)]
pub struct Tablet {
    /// Its number in the run.
    pub index: usize,
    /// Its user.
    pub user: String,
    token: String,
    refresh: String,
    token_at: Instant,
    /// Its registered device.
    pub device: String,
    /// Its user's rights, from the reference bundle.
    pub author: Author,
    /// Its documents while offline (`None` while a client holds them).
    pub engine: Option<Engine>,
    /// The audits it leads, with the header to create each with.
    pub leads: Vec<(DocumentId, AuditHeader)>,
    /// The audits it is a member of.
    pub member_of: Vec<DocumentId>,
    /// The reference bundle it downloaded.
    pub bundle: Value,
}

impl Tablet {
    /// Logs in, registers a device and downloads the reference bundle.
    pub async fn sign_in(http: &Http, index: usize, user: &str, password: &str) -> Result<Tablet> {
        let login = json!({ "username": user, "password": password });
        let tokens = http.post("/api/v1/auth/login", None, &login, 200).await?;
        let token = text(&tokens, "access_token")?;
        let refresh = text(&tokens, "refresh_token")?;
        Tablet::register(http, index, user, token, refresh).await
    }

    /// Another device of the same user, signed in with the same session.
    pub async fn another_device(&self, http: &Http, index: usize) -> Result<Tablet> {
        let (token, refresh) = (self.token.clone(), self.refresh.clone());
        Tablet::register(http, index, &self.user, token, refresh).await
    }

    async fn register(
        http: &Http,
        index: usize,
        user: &str,
        token: String,
        refresh: String,
    ) -> Result<Tablet> {
        let name = json!({ "name": format!("Load tablet {}", index + 1) });
        let reg = http
            .post("/api/v1/devices", Some(&token), &name, 201)
            .await?;
        let actor: ActorId = text(&reg, "actor")?
            .parse()
            .map_err(|e| anyhow::anyhow!("actor: {e:?}"))?;
        let bundle = http.get("/api/v1/reference", &token).await?;
        let author = author_of(&bundle["author"])?;
        let mut leads = Vec::new();
        let mut member_of = Vec::new();
        for a in bundle["audits"].as_array().into_iter().flatten() {
            let id: DocumentId = text(a, "id")?.parse()?;
            let team = a["team"].as_array().context("an audit without a team")?;
            let role_of = |name: &str| {
                team.iter()
                    .find(|m| m["username"].as_str() == Some(name))
                    .and_then(|m| m["role"].as_str())
                    .map(str::to_owned)
            };
            match role_of(user).as_deref() {
                Some("lead") => leads.push((id, header(a, team)?)),
                Some(_) => member_of.push(id),
                None => {}
            }
        }
        Ok(Tablet {
            index,
            user: user.to_owned(),
            token,
            refresh,
            token_at: Instant::now(),
            device: text(&reg, "device_id")?,
            author,
            engine: Some(Engine::new(Side::Device(actor))),
            leads,
            member_of,
            bundle,
        })
    }

    /// Every document the tablet should hold.
    pub fn documents(&self) -> impl Iterator<Item = DocumentId> + '_ {
        self.leads
            .iter()
            .map(|(d, _)| *d)
            .chain(self.member_of.iter().copied())
    }

    /// Connects the tablet's engine (the client holds it until `park`).
    pub async fn connect(&mut self, http: &Http) -> Result<Client> {
        if self.token_at.elapsed() > TOKEN_AGE {
            let body = json!({ "refresh_token": self.refresh });
            let tokens = http.post("/api/v1/auth/refresh", None, &body, 200).await?;
            self.token = text(&tokens, "access_token")?;
            self.refresh = text(&tokens, "refresh_token")?;
            self.token_at = Instant::now();
        }
        let engine = self
            .engine
            .take()
            .context("the tablet is already connected")?;
        Client::connect(&http.ws_url(), &self.token, &self.device, engine)
            .await
            .with_context(|| format!("{} cannot connect", self.user))
    }

    /// Takes a client offline, keeping its documents on the tablet.
    pub async fn park(&mut self, client: Client) {
        self.engine = Some(client.disconnect().await);
    }

    /// Edits offline; the store is confirmed at once, as the tablet's own storage would.
    pub fn edit_offline(&mut self, doc: DocumentId, edit: &Edit) -> Result<()> {
        let now = Timestamp(now_ms());
        let engine = self.engine.as_mut().context("the tablet is online")?;
        let mut fx = engine.edit(now, doc, edit, &self.author).map_err(|r| {
            anyhow::anyhow!("{} refused locally ({}): {}", self.user, r.rule, r.message)
        })?;
        while !fx.is_empty() {
            let mut next = Vec::new();
            for e in fx {
                if let Effect::Store { ticket, .. } | Effect::Replace { ticket, .. } = e {
                    next.extend(engine.handle(now, Input::Stored { ticket }));
                }
            }
            fx = next;
        }
        Ok(())
    }
}

/// A document's heads, sorted.
pub fn heads(engine: &Engine, doc: &DocumentId) -> Vec<ChangeHash> {
    let mut h = engine.doc(doc).map(|d| d.get_heads()).unwrap_or_default();
    h.sort();
    h
}

fn text(v: &Value, key: &str) -> Result<String> {
    v[key]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("no '{key}' in {v}"))
}

/// The header a lead creates a planned audit with.
fn header(a: &Value, team: &[Value]) -> Result<AuditHeader> {
    let users = |role: Option<&str>| -> Result<Vec<_>> {
        team.iter()
            .filter(|m| role.is_none() || m["role"].as_str() == role)
            .map(|m| Ok(text(m, "username")?.parse()?))
            .collect()
    };
    Ok(AuditHeader {
        unit: text(a, "unit")?.parse()?,
        number: text(a, "number")?,
        scope: a["scope"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect(),
        template_version: a["template_version"].as_u64().context("template_version")?,
        lead: users(Some("lead"))?
            .into_iter()
            .next()
            .context("an audit without a lead")?,
        team: users(None)?,
        start: text(a, "planned_from")?.parse()?,
        end: Some(text(a, "planned_to")?.parse()?),
    })
}

/// The rights in a reference bundle, as sync-core's author.
fn author_of(v: &Value) -> Result<Author> {
    let mut author = Author::new(text(v, "user")?.parse()?);
    for g in v["grants"].as_array().into_iter().flatten() {
        author.grants.push(RoleGrant {
            unit: text(g, "unit")?.parse()?,
            role: text(g, "role")?.parse()?,
            from: text(g, "from")?.parse()?,
            until: g["until"].as_str().map(str::parse).transpose()?,
        });
    }
    for (id, role) in v["audits"].as_object().into_iter().flatten() {
        let role = role.as_str().context("a team role")?;
        author.audits.insert(id.parse()?, role.parse()?);
    }
    for (id, p) in v["planned"].as_object().into_iter().flatten() {
        let plan = sync_core::permissions::PlannedAudit {
            unit: text(p, "unit")?.parse()?,
            number: text(p, "number")?,
            template_version: p["template_version"].as_u64().context("template_version")?,
            lead: text(p, "lead")?.parse()?,
            checklist: std::sync::Arc::new(serde_json::from_value(p["checklist"].clone())?),
        };
        author.planned.insert(id.parse()?, plan);
    }
    for p in v["processes"].as_array().into_iter().flatten() {
        let (Some(unit), Some(code)) = (p[0].as_str(), p[1].as_str()) else {
            continue;
        };
        author.processes.insert((unit.parse()?, code.parse()?));
    }
    for a in v["actors"].as_array().into_iter().flatten() {
        let hex = a.as_str().context("an actor")?;
        let actor: ActorId = hex.parse().map_err(|e| anyhow::anyhow!("actor: {e:?}"))?;
        author.actors.insert(actor);
    }
    Ok(author)
}
