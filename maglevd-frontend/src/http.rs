//! The HTTP surface (axum):
//!
//! | path | what |
//! |---|---|
//! | `/view/` | the read-only page |
//! | `/view/api/state`, `/view/api/state/{maglevd}` | every maglevd's state, or one's |
//! | `/view/api/maglevds` | the maglevds and whether each is connected |
//! | `/view/api/version` | this program's version |
//! | `/view/api/events` | server-sent events (see [`crate::sse`]) |
//! | `/admin/` | the page with actions (basic auth) |
//! | `POST /admin/api/{maglevd}/backends/{backend}/{pause,resume,enable,disable}` | a backend action |
//! | `POST /admin/api/{maglevd}/weight` | set (or reset) a pool member's weight |
//! | `POST /admin/api/{maglevd}/sync`, `.../plan` | sync VPP now, or the dry-run plan |
//! | `POST /admin/api/{maglevd}/preview` | the buckets a change would move |
//! | `/healthz`, `/favicon.ico`, `/assets/*` | liveness, the icon, the page's files |
//!
//! Every admin POST needs the page's CSRF token in `X-CSRF-Token` and is logged with the
//! user. Without a password `/admin/` answers 404 saying how to turn it on.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use maglev_api::v1::{
    self, BackendRequest, ChangeKind, PlanVpplbSyncRequest, PreviewChangeRequest, SetWeightRequest,
    SyncVpplbStateRequest,
};
use serde::Deserialize;

use crate::assets;
use crate::auth::{Credentials, ct_eq};
use crate::driver::{CallError, call};
use crate::hub::{Command, Hub, Scope};
use crate::state::backend_state;

/// The HTTP server's settings and shared state.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The hub.
    pub hub: Hub,
    /// The admin's credentials; `None` turns `/admin/` off.
    pub admin: Option<Credentials>,
    /// The CSRF token admin POSTs must carry.
    pub csrf: Arc<str>,
    /// The SSE heartbeat period.
    pub ping: Duration,
}

/// The header carrying the CSRF token.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The router of the whole surface.
pub fn router(state: AppState) -> Router {
    let admin = Router::new()
        .route("/admin/", get(admin_page))
        .route(
            "/admin/api/{maglevd}/backends/{backend}/{action}",
            post(backend_action),
        )
        .route("/admin/api/{maglevd}/weight", post(set_weight))
        .route("/admin/api/{maglevd}/sync", post(sync))
        .route("/admin/api/{maglevd}/plan", post(plan))
        .route("/admin/api/{maglevd}/preview", post(preview))
        .route_layer(middleware::from_fn_with_state(state.clone(), admin_guard));
    Router::new()
        .route("/", get(|| async { Redirect::to("/view/") }))
        .route("/view", get(|| async { Redirect::to("/view/") }))
        .route("/admin", get(|| async { Redirect::to("/admin/") }))
        .route("/view/", get(view_page))
        .route("/view/api/state", get(all_state))
        .route("/view/api/state/{maglevd}", get(one_state))
        .route("/view/api/maglevds", get(maglevds))
        .route("/view/api/version", get(version))
        .route("/view/api/events", get(crate::sse::events))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/favicon.ico", get(|| async { asset("favicon.svg") }))
        .route(
            "/assets/{file}",
            get(|Path(file): Path<String>| async move { asset(&file) }),
        )
        .merge(admin)
        .with_state(state)
}

fn asset(file: &str) -> Response {
    match assets::get(file) {
        Some((mime, body)) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(mime)),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            body,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    }
}

fn html(body: String) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        body,
    )
        .into_response()
}

async fn view_page() -> Response {
    html(assets::page(assets::Mode::View, ""))
}

async fn admin_page(State(app): State<AppState>) -> Response {
    html(assets::page(assets::Mode::Admin, &app.csrf))
}

/// Basic auth on every `/admin/` route, and the CSRF token on its POSTs.
async fn admin_guard(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let Some(admin) = &app.admin else {
        return (
            StatusCode::NOT_FOUND,
            "/admin/ is off: set MAGLEV_FRONTEND_PASSWORD (and MAGLEV_FRONTEND_USER) to turn it on\n",
        )
            .into_response();
    };
    let authorization = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(HeaderValue::as_bytes);
    if !admin.check(authorization) {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(
                    "Basic realm=\"maglevd-frontend admin\", charset=\"UTF-8\"",
                ),
            )],
            "authentication required\n",
        )
            .into_response();
    }
    if request.method() == axum::http::Method::POST {
        let token = request
            .headers()
            .get(CSRF_HEADER)
            .map_or(&[][..], HeaderValue::as_bytes);
        if !ct_eq(token, app.csrf.as_bytes()) {
            tracing::warn!(name: "admin-csrf-refused", user = %admin.user(), path = %request.uri().path(), "admin-csrf-refused");
            return (StatusCode::FORBIDDEN, "missing or wrong CSRF token\n").into_response();
        }
    }
    next.run(request).await
}

async fn all_state(State(app): State<AppState>) -> Response {
    let scopes: Vec<_> = app.hub.scopes().iter().map(|s| read(s).clone()).collect();
    json(&serde_json::json!({ "epoch": app.hub.epoch(), "maglevds": scopes }))
}

async fn one_state(State(app): State<AppState>, Path(name): Path<String>) -> Response {
    match app.hub.scope(&name) {
        Some(scope) => json(&*read(scope)),
        None => not_found(&name),
    }
}

async fn maglevds(State(app): State<AppState>) -> Response {
    let list: Vec<_> = app
        .hub
        .scopes()
        .iter()
        .map(|s| {
            let state = read(s);
            serde_json::json!({
                "name": s.name,
                "connected": state.connected,
                "error": state.error,
                "version": state.version,
            })
        })
        .collect();
    json(&list)
}

async fn version() -> Response {
    json(&serde_json::json!({
        "name": "maglevd-frontend",
        "version": env!("CARGO_PKG_VERSION"),
    }))
}

fn read(scope: &Scope) -> std::sync::RwLockReadGuard<'_, crate::state::ScopeState> {
    scope
        .state
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response {
    (
        [(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"))],
        axum::Json(value),
    )
        .into_response()
}

fn not_found(name: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        json(&serde_json::json!({ "error": format!("no maglevd {name:?}") })),
    )
        .into_response()
}

/// How a gRPC status maps to an HTTP status.
const STATUS_MAP: &[(tonic::Code, StatusCode)] = &[
    (tonic::Code::NotFound, StatusCode::NOT_FOUND),
    (tonic::Code::InvalidArgument, StatusCode::BAD_REQUEST),
    (tonic::Code::FailedPrecondition, StatusCode::CONFLICT),
    (tonic::Code::PermissionDenied, StatusCode::FORBIDDEN),
    (tonic::Code::Unavailable, StatusCode::SERVICE_UNAVAILABLE),
    (tonic::Code::DeadlineExceeded, StatusCode::GATEWAY_TIMEOUT),
];

fn call_error(error: &CallError) -> Response {
    let status = match error {
        CallError::Status(s) => STATUS_MAP
            .iter()
            .find(|(code, _)| *code == s.code())
            .map_or(StatusCode::BAD_GATEWAY, |(_, http)| *http),
        CallError::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
    };
    let message = match error {
        CallError::Status(s) => s.message().to_owned(),
        CallError::Timeout(_) => error.to_string(),
    };
    (status, json(&serde_json::json!({ "error": message }))).into_response()
}

/// A backend action of `/admin/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendAction {
    /// Stop health checking; weight 0, flows drain.
    Pause,
    /// Resume health checking.
    Resume,
    /// Enable the backend.
    Enable,
    /// Disable the backend; weight 0, flows flushed.
    Disable,
}

impl BackendAction {
    /// Its name in logs and paths.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Enable => "enable",
            Self::Disable => "disable",
        }
    }
}

/// The scope and the admin user of an admin request; `None` for an unknown maglevd.
fn admin_scope<'a>(app: &'a AppState, name: &str) -> Option<(&'a Arc<Scope>, &'a str)> {
    let user = app.admin.as_ref().map_or("", Credentials::user);
    app.hub.scope(name).map(|s| (s, user))
}

/// Logs an admin action and, when it changed something, asks the driver to refetch.
fn finish<T: serde::Serialize>(
    scope: &Scope,
    user: &str,
    action: &str,
    target: &str,
    mutating: bool,
    result: Result<T, CallError>,
) -> Response {
    let ok = result.is_ok();
    tracing::info!(name: "admin-action", user = %user, maglevd = %scope.name, action = %action, target = %target, ok, "admin-action");
    match result {
        Ok(answer) => {
            if mutating {
                let _ = scope.commands.send(Command::Changed);
            }
            json(&answer)
        }
        Err(e) => call_error(&e),
    }
}

async fn backend_action(
    State(app): State<AppState>,
    Path((name, backend, action)): Path<(String, String, BackendAction)>,
) -> Response {
    let Some((scope, user)) = admin_scope(&app, &name) else {
        return not_found(&name);
    };
    let mut client = scope.client.clone();
    let request = BackendRequest {
        name: backend.clone(),
    };
    let result = match action {
        BackendAction::Pause => call(client.pause_backend(request)).await,
        BackendAction::Resume => call(client.resume_backend(request)).await,
        BackendAction::Enable => call(client.enable_backend(request)).await,
        BackendAction::Disable => call(client.disable_backend(request)).await,
    }
    .map(|b| {
        serde_json::json!({
            "name": b.name,
            "state": backend_state(b.state()),
            "enabled": b.enabled,
        })
    });
    finish(scope, user, action.name(), &backend, true, result)
}

/// The body of `POST .../weight`.
#[derive(Debug, Clone, Deserialize)]
pub struct WeightBody {
    /// The frontend.
    pub frontend: String,
    /// The pool.
    pub pool: String,
    /// The backend.
    pub backend: String,
    /// The new weight, 0-100.
    #[serde(default)]
    pub weight: u32,
    /// Drop the override instead.
    #[serde(default)]
    pub reset: bool,
}

async fn set_weight(
    State(app): State<AppState>,
    Path(name): Path<String>,
    axum::Json(body): axum::Json<WeightBody>,
) -> Response {
    let Some((scope, user)) = admin_scope(&app, &name) else {
        return not_found(&name);
    };
    let mut client = scope.client.clone();
    let target = format!(
        "{}/{}/{}={}",
        body.frontend, body.pool, body.backend, body.weight
    );
    let result = call(client.set_frontend_pool_backend_weight(SetWeightRequest {
        frontend: body.frontend,
        pool: body.pool,
        backend: body.backend,
        weight: body.weight,
        reset: body.reset,
    }))
    .await
    .map(|f| crate::state::Frontend::from(&f));
    finish(scope, user, "set-weight", &target, true, result)
}

/// The body of `POST .../sync` and `.../plan`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SyncBody {
    /// One frontend; all when absent.
    #[serde(default)]
    pub frontend: Option<String>,
}

fn op_json(op: &v1::LbSyncOp) -> serde_json::Value {
    serde_json::json!({
        "op": op.kind().as_str_name().trim_start_matches("LB_SYNC_OP_KIND_").to_ascii_lowercase(),
        "frontend": op.frontend,
        "prefix": op.prefix,
        "port": op.port,
        "address": op.address,
        "backend": op.backend,
        "weight": op.weight,
        "flush": op.flush,
    })
}

async fn sync(
    State(app): State<AppState>,
    Path(name): Path<String>,
    body: Option<axum::Json<SyncBody>>,
) -> Response {
    let Some((scope, user)) = admin_scope(&app, &name) else {
        return not_found(&name);
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let mut client = scope.client.clone();
    let target = body.frontend.clone().unwrap_or_else(|| "*".into());
    let result = call(client.sync_vpplb_state(SyncVpplbStateRequest {
        frontend: body.frontend,
    }))
    .await
    .map(|r| {
        serde_json::json!({
            "ops": r.ops.iter().map(op_json).collect::<Vec<_>>(),
            "ok": r.summary.as_ref().is_some_and(|s| s.ok),
        })
    });
    finish(scope, user, "sync", &target, true, result)
}

async fn plan(
    State(app): State<AppState>,
    Path(name): Path<String>,
    body: Option<axum::Json<SyncBody>>,
) -> Response {
    let Some((scope, user)) = admin_scope(&app, &name) else {
        return not_found(&name);
    };
    let body = body.map(|b| b.0).unwrap_or_default();
    let mut client = scope.client.clone();
    let target = body.frontend.clone().unwrap_or_else(|| "*".into());
    let result = call(client.plan_vpplb_sync(PlanVpplbSyncRequest {
        frontend: body.frontend,
    }))
    .await
    .map(|r| serde_json::json!({ "ops": r.ops.iter().map(op_json).collect::<Vec<_>>() }));
    finish(scope, user, "plan", &target, false, result)
}

/// The change a preview evaluates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PreviewKind {
    /// Effective weight 0.
    Drain,
    /// A new weight.
    SetWeight,
    /// Out of the frontend.
    Remove,
}

impl From<PreviewKind> for ChangeKind {
    fn from(kind: PreviewKind) -> Self {
        match kind {
            PreviewKind::Drain => Self::Drain,
            PreviewKind::SetWeight => Self::SetWeight,
            PreviewKind::Remove => Self::Remove,
        }
    }
}

/// The body of `POST .../preview`.
#[derive(Debug, Clone, Deserialize)]
pub struct PreviewBody {
    /// The frontend.
    pub frontend: String,
    /// The backend.
    pub backend: String,
    /// The change.
    pub kind: PreviewKind,
    /// The weight, for `set-weight`.
    #[serde(default)]
    pub weight: u32,
}

async fn preview(
    State(app): State<AppState>,
    Path(name): Path<String>,
    axum::Json(body): axum::Json<PreviewBody>,
) -> Response {
    let Some((scope, user)) = admin_scope(&app, &name) else {
        return not_found(&name);
    };
    let mut client = scope.client.clone();
    let target = format!("{}/{}", body.frontend, body.backend);
    let result = call(client.preview_change(PreviewChangeRequest {
        frontend: body.frontend,
        backend: body.backend,
        kind: ChangeKind::from(body.kind).into(),
        weight: body.weight,
    }))
    .await
    .map(|r| {
        let shares = |list: &[v1::BucketShare]| {
            list.iter()
                .map(|s| serde_json::json!({ "backend": s.backend, "weight": s.weight, "buckets": s.buckets }))
                .collect::<Vec<_>>()
        };
        serde_json::json!({
            "table_length": r.table_length,
            "changed_buckets": r.changed_buckets,
            "moves": r.moves.iter().map(|m| serde_json::json!({ "from": m.from_backend, "to": m.to_backend, "buckets": m.buckets })).collect::<Vec<_>>(),
            "before": shares(&r.before),
            "after": shares(&r.after),
        })
    });
    finish(scope, user, "preview", &target, false, result)
}

/// Headers of an SSE response.
#[must_use]
pub fn sse_headers() -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    headers
}
