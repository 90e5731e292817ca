//! The HTTP edge: the application as a value ([`app`]) that tests drive on
//! port 0, its routes, and the state every handler shares.

pub mod admin;
pub mod blob_access;
pub mod blobs;
pub mod error;
pub mod extract;
pub mod me;
pub mod metrics;
pub mod ops;
pub mod reference;
pub mod reports;
pub mod search;
pub mod session;
pub mod web;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use tokio::net::TcpListener;

use crate::auth::Auth;
use crate::config::Config;
use crate::db::Db;
use error::ApiError;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The database.
    pub db: Db,
    /// Authentication.
    pub auth: Arc<Auth>,
    /// Configuration.
    pub config: Arc<Config>,
    /// Metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Sync.
    pub sync: crate::sync::SyncHandle,
}

impl AppState {
    /// The state of a server: starts sync (call inside the runtime).
    pub fn new(db: Db, auth: impl Into<Arc<Auth>>, config: Config) -> AppState {
        let metrics: Arc<metrics::Metrics> = Arc::default();
        let sync = crate::sync::SyncHandle::start(db.clone(), config.sync.clone(), metrics.clone());
        tokio::spawn(blobs::sweep_uploads(db.clone(), config.limits.upload_ttl));
        AppState {
            db,
            auth: auth.into(),
            config: Arc::new(config),
            metrics,
            sync,
        }
    }
}

/// Declares every route once: the router is built from this list, and the
/// OpenAPI test checks the documented routes against [`ROUTES`].
macro_rules! routes {
    ($($method:ident $path:literal => $handler:path $(, body limit $limit:expr)?);* $(;)?) => {
        /// Every route: (method, path pattern as the OpenAPI file writes it).
        pub const ROUTES: &[(&str, &str)] = &[$((stringify!($method), $path)),*];

        fn router() -> Router<AppState> {
            Router::new()
                $(.route($path, $method($handler)$(.layer(DefaultBodyLimit::max($limit)))?))*
        }
    };
}

routes! {
    get "/healthz" => ops::healthz;
    get "/metrics" => ops::metrics;
    post "/api/v1/auth/login" => session::login;
    post "/api/v1/auth/refresh" => session::refresh;
    post "/api/v1/auth/logout" => session::logout;
    get "/api/v1/me" => me::me;
    get "/api/v1/devices" => me::devices;
    post "/api/v1/devices" => me::register_device;
    post "/api/v1/devices/{device}/actors" => me::new_actor;
    delete "/api/v1/devices/{device}" => me::revoke_device;
    get "/api/v1/reference" => reference::bundle;
    get "/api/v1/search" => search::search;
    get "/api/v1/sync" => crate::sync::socket::upgrade;
    put "/api/v1/blobs/{sha256}" => blobs::upload;
    get "/api/v1/blobs/{sha256}" => blobs::download;
    get "/api/v1/blobs/{sha256}/status" => blobs::status;
    get "/api/v1/admin/users" => admin::users::list;
    post "/api/v1/admin/users" => admin::users::create;
    post "/api/v1/admin/users/{username}/disable" => admin::users::disable;
    post "/api/v1/admin/users/{username}/enable" => admin::users::enable;
    put "/api/v1/admin/users/{username}/password" => admin::users::set_password;
    delete "/api/v1/admin/users/{username}/sessions" => admin::devices::end_sessions;
    get "/api/v1/admin/users/{username}/devices" => admin::devices::list;
    delete "/api/v1/admin/users/{username}/devices/{device}" => admin::devices::revoke;
    get "/api/v1/admin/units/{unit}/roles" => admin::roles::list;
    post "/api/v1/admin/units/{unit}/roles" => admin::roles::grant;
    delete "/api/v1/admin/units/{unit}/roles/{id}" => admin::roles::end;
    get "/api/v1/admin/units/{unit}/processes" => admin::processes::list;
    put "/api/v1/admin/units/{unit}/processes/{code}" => admin::processes::put;
    get "/api/v1/admin/units/{unit}/audits" => admin::audits::list;
    post "/api/v1/admin/units/{unit}/audits" => admin::audits::plan;
    put "/api/v1/admin/units/{unit}/audits/{id}/team" => admin::audits::set_team;
    get "/api/v1/admin/units/{unit}/due-rules" => admin::due_rules::get;
    put "/api/v1/admin/units/{unit}/due-rules" => admin::due_rules::put;
    get "/api/v1/admin/units/{unit}/programmes" => admin::programmes::list;
    post "/api/v1/admin/units/{unit}/programmes" => admin::programmes::create;
    post "/api/v1/admin/units/{unit}/programmes/{id}/approve" => admin::programmes::approve;
    post "/api/v1/admin/templates" => admin::templates::publish, body limit crate::templates::MAX_FILE;
    get "/api/v1/admin/amendments" => admin::templates::list;
    post "/api/v1/admin/units/{unit}/amendments/{id}/ack" => admin::templates::acknowledge;
    get "/api/v1/reports/units/{unit}/nc-ageing" => reports::nc_ageing;
    get "/api/v1/reports/units/{unit}/quarantine" => reports::quarantine;
    get "/api/v1/reports/units/{unit}/programme-adherence" => reports::programme_adherence;
}

/// The application.
pub fn app(state: AppState) -> Router {
    router()
        .fallback(web_or_not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            time_limit,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(DefaultBodyLimit::max(state.config.limits.json_body_bytes))
        .with_state(state)
}

/// Stops a request that runs past the time limit (its transaction rolls back).
async fn time_limit(State(state): State<AppState>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(state.config.limits.request_timeout, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// A file of the browser client, if the server serves one at that path;
/// else 404.
async fn web_or_not_found(State(state): State<AppState>, req: Request) -> Response {
    state
        .config
        .web
        .as_ref()
        .and_then(|web| web.answer(req.method(), req.uri().path()))
        .unwrap_or_else(|| not_found().into_response())
}

fn not_found() -> ApiError {
    ApiError::NotFound("There is nothing at this address.".into())
}

/// Serves the application until `shutdown` completes, then finishes the
/// requests in flight and returns.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    // Small sync frames go out at once (Nagle's algorithm would hold them back).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(cause = %e, "cannot set TCP_NODELAY");
        }
    });
    axum::serve(
        listener,
        app(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}
