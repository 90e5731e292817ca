//! A real server on port 0 with a fresh database per test: a SQLite file in a
//! temporary folder, or a new PostgreSQL database on 127.0.0.1:5432. The demo
//! unit is loaded unless a test asks for an empty database.
#![allow(dead_code)]

pub mod sync_help;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use anyhow::{Context, Result};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server::auth::Auth;
use server::config::Config;
use server::db::Db;
use server::db::accounts::random_id;
use server::http::{self, AppState};
use server::secret::Secret;
use tokio::sync::oneshot;

/// The databases the same tests run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The PostgreSQL server the tests use (trust authentication).
pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// The demo password.
pub const PASSWORD: &str = server::seed::DEMO_PASSWORD;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh, migrated database on a backend: (URL, data folder, PostgreSQL database name).
pub async fn fresh_database(backend: Backend) -> Result<(String, PathBuf, Option<String>)> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "sqm-test-{}-{n}-{}",
        std::process::id(),
        &random_id()[..8]
    ));
    std::fs::create_dir_all(&dir)?;
    Ok(match backend {
        Backend::Sqlite => (
            format!("sqlite://{}", dir.join("sqm.db").display()),
            dir,
            None,
        ),
        Backend::Postgres => {
            let name = format!("sqm_test_{}_{n}_{}", std::process::id(), &random_id()[..8]);
            let admin = Db::connect(PG_ADMIN)
                .await
                .context("PostgreSQL on 127.0.0.1:5432 is needed for these tests")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                .execute(admin.pool())
                .await?;
            admin.close().await;
            (
                format!("postgres://postgres@127.0.0.1:5432/{name}"),
                dir,
                Some(name),
            )
        }
    })
}

/// Drops a test's PostgreSQL database and removes its folder.
pub async fn drop_database(dir: &PathBuf, pg: Option<&str>) {
    if let Some(name) = pg
        && let Ok(admin) = Db::connect(PG_ADMIN).await
    {
        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
        )))
        .execute(admin.pool())
        .await;
        admin.close().await;
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// A running server and a client for it.
pub struct TestServer {
    pub base: String,
    pub addr: SocketAddr,
    pub db: Db,
    /// The server's authentication (its hasher's figures, holding its threads).
    pub auth: std::sync::Arc<Auth>,
    pub client: reqwest::Client,
    pub dir: PathBuf,
    sync: server::sync::SyncHandle,
    pg: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// A server on `backend` with the demo unit loaded.
    pub async fn start(backend: Backend) -> Result<TestServer> {
        Self::start_with(backend, true).await
    }

    /// A server on `backend`, with or without the demo unit.
    pub async fn start_with(backend: Backend, demo: bool) -> Result<TestServer> {
        Self::start_configured(backend, demo, |_| {}).await
    }

    /// A server on `backend` whose configuration a test adjusts (limits, timings).
    pub async fn start_configured(
        backend: Backend,
        demo: bool,
        configure: impl FnOnce(&mut Config),
    ) -> Result<TestServer> {
        let (url, dir, pg) = fresh_database(backend).await?;
        Self::start_at(&url, dir, pg, demo, configure).await
    }

    /// A server on an existing database (a second server process on the same
    /// PostgreSQL: pass `None` for `pg` so that stopping it leaves the database).
    pub async fn start_at(
        url: &str,
        dir: PathBuf,
        pg: Option<String>,
        demo: bool,
        configure: impl FnOnce(&mut Config),
    ) -> Result<TestServer> {
        let db = Db::connect(url).await?;
        db.migrate().await?;
        if demo {
            server::seed::demo(&db).await?;
        }
        let mut config = Config::new("127.0.0.1:0".parse()?);
        configure(&mut config);
        let auth = std::sync::Arc::new(Auth::with_limits(
            &Secret::new(b"test signing key, 32 bytes long!".to_vec()),
            &config.login,
        )?);
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        let state = AppState::new(db.clone(), auth.clone(), config);
        let sync = state.sync.clone();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(http::serve(listener, state, async {
            let _ = rx.await;
        }));
        Ok(TestServer {
            base: format!("http://{addr}"),
            addr,
            db,
            auth,
            client: reqwest::Client::new(),
            dir,
            sync,
            pg,
            shutdown: Some(tx),
            task: Some(task),
        })
    }

    /// The server's sync service.
    pub fn sync_handle(&self) -> &server::sync::SyncHandle {
        &self.sync
    }

    /// Stops the server and drops its database.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        self.db.close().await;
        drop_database(&self.dir, self.pg.as_deref()).await;
    }

    /// A request with an optional bearer token and JSON body: (status, JSON body or Null).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Result<(StatusCode, Value)> {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await?;
        let status = res.status();
        let text = res.text().await?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    pub async fn get(&self, path: &str, token: &str) -> Result<(StatusCode, Value)> {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Result<(StatusCode, Value)> {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    /// Logs in and returns the whole token answer.
    pub async fn login_tokens(
        &self,
        username: &str,
        password: &str,
    ) -> Result<(StatusCode, Value)> {
        self.call(
            Method::POST,
            "/api/v1/auth/login",
            None,
            Some(json!({ "username": username, "password": password })),
        )
        .await
    }

    /// Logs a demo user in; returns the access token.
    pub async fn login(&self, username: &str) -> Result<String> {
        let (status, body) = self.login_tokens(username, PASSWORD).await?;
        anyhow::ensure!(
            status == StatusCode::OK,
            "login of {username}: {status} {body}"
        );
        body["access_token"]
            .as_str()
            .map(str::to_owned)
            .context("no access_token")
    }
}

/// Runs a test body on SQLite and on PostgreSQL, as two tests.
#[macro_export]
macro_rules! on_both {
    ($(#[$meta:meta])* async fn $name:ident($backend:ident: Backend) -> Result<()> $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($backend: Backend) -> anyhow::Result<()> $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() -> anyhow::Result<()> {
                run(Backend::Sqlite).await
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() -> anyhow::Result<()> {
                run(Backend::Postgres).await
            }
        }
    };
}

/// A user's tablet: signed in, registered, its rights read as the server
/// reads them, and an empty device engine under its registered actor id.
pub struct Tablet {
    pub user: String,
    pub token: String,
    pub refresh: String,
    pub device: String,
    pub author: sync_core::permissions::Author,
    pub engine: Option<sync_core::engine::Engine>,
}

impl TestServer {
    /// The sync socket's URL.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/api/v1/sync", self.addr)
    }

    /// Signs `user` in and registers a tablet for them.
    pub async fn tablet(&self, user: &str) -> Result<Tablet> {
        let (status, tokens) = self.login_tokens(user, PASSWORD).await?;
        anyhow::ensure!(status == StatusCode::OK, "login of {user}: {status}");
        let token = tokens["access_token"].as_str().context("token")?.to_owned();
        let refresh = tokens["refresh_token"]
            .as_str()
            .context("token")?
            .to_owned();
        let (status, reg) = self
            .post(
                "/api/v1/devices",
                &token,
                json!({"name": format!("{user} tablet")}),
            )
            .await?;
        anyhow::ensure!(
            status == StatusCode::CREATED,
            "device of {user}: {status} {reg}"
        );
        let actor: sync_core::automerge::ActorId = reg["actor"]
            .as_str()
            .context("actor")?
            .parse()
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        let author = server::access::author_of(&self.db, user).await?;
        Ok(Tablet {
            user: user.to_owned(),
            token,
            refresh,
            device: reg["device_id"].as_str().context("device")?.to_owned(),
            author,
            engine: Some(sync_core::engine::Engine::new(
                sync_core::engine::Side::Device(actor),
            )),
        })
    }

    /// Connects a tablet's engine (taken from the tablet until `park`).
    /// A refused sign-in leaves the engine with the tablet.
    pub async fn connect(&self, t: &mut Tablet) -> Result<server::client::Client> {
        anyhow::ensure!(t.engine.is_some(), "the tablet is already connected");
        let socket = server::client::Client::open(&self.ws_url(), &t.token, &t.device).await?;
        let engine = t.engine.take().context("the tablet is already connected")?;
        Ok(server::client::Client::attach(socket, engine).await)
    }
}

impl Tablet {
    /// Takes a client offline, keeping its documents on the tablet.
    pub async fn park(&mut self, client: server::client::Client) {
        self.engine = Some(client.disconnect().await);
    }

    /// The tablet's engine while offline.
    pub fn offline(&mut self) -> &mut sync_core::engine::Engine {
        self.engine.as_mut().expect("the tablet is offline")
    }

    /// Edits offline (the store is confirmed at once, as the tablet's own storage would).
    pub fn edit_offline(
        &mut self,
        doc: sync_core::ids::DocumentId,
        edit: sync_core::edit::Edit,
    ) -> Result<()> {
        let now = sync_core::date::Timestamp(server::db::now_ms());
        let author = self.author.clone();
        let engine = self.offline();
        let mut fx = engine
            .edit(now, doc, &edit, &author)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        while !fx.is_empty() {
            let mut next = Vec::new();
            for e in fx {
                if let sync_core::engine::Effect::Store { ticket, .. }
                | sync_core::engine::Effect::Replace { ticket, .. } = e
                {
                    next.extend(engine.handle(now, sync_core::engine::Input::Stored { ticket }));
                }
            }
            fx = next;
        }
        Ok(())
    }
}

/// An answer to checklist item `key`, with a note.
pub fn answer(key: &str, a: sync_core::audit::Cpna, note: &str) -> Result<sync_core::edit::Edit> {
    Ok(sync_core::edit::Edit::SetResponse {
        key: key.parse()?,
        answer: sync_core::audit::Answer::Cpna(a),
        note: note.into(),
        evidence: Vec::new(),
    })
}
