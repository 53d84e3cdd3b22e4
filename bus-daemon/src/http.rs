//! The daemon's HTTP API (axum): ingest, stats, recent events, metrics, health, config.
//!
//! | route | what |
//! |---|---|
//! | `POST /events` | one event `{"type", "data"}`, a JSON array of them, or NDJSON (`Content-Type: application/x-ndjson`); answers [`IngestReply`]. `?ids=false` leaves the ids out. |
//! | `GET /stats` | the bus's [`BusStats`](bus_core::BusStats) as JSON |
//! | `GET /events?after=ID&limit=N&pattern=P&since=TIME` | stored events from the log, oldest first, paged: `{"events": [...], "next": ID or null}` (see [`read`]) |
//! | `GET /events/stream?pattern=P&after=ID` | Server-Sent Events: stored events after `Last-Event-ID` (or `after`), then live (see [`stream`](crate::stream)) |
//! | `POST /events/replay?after=ID&since=T&pattern=P&limit=N&dry_run=B` | republishes one page of stored events to the live consumers, marked as replays (see the daemon's `replay` module) |
//! | `GET /events/recent?limit=N` | the newest N stored events (default 10, at most 10,000 and 8 MiB of data), oldest first, read from the log: `[{"id", "type", "data", "timestamp"}, ...]` (and `"priority"` where the publisher gave one) |
//! | `GET /metrics` | Prometheus text (404 when metrics are off) |
//! | `GET /healthz` | `{"status": "ok"}`; on Redis also `"store": {"state": "connected" or "reconnecting", "last_error", ...}`, and `"status": "degraded"` while it reconnects |
//! | `GET /`, `/ui/...`, `POST /ui/login` | the web view and its session login (see [`ui`](crate::ui)) |
//! | `GET /config`, `PATCH /config` | the runtime settings; PATCH takes [`RuntimeSettings`] (`{"reload_schemas": true}` reads the schema file again) |
//!
//! With `CLAUDE_MPM_EVENTBUS_TOKEN` set, every route except `GET /healthz` and `GET /metrics`
//! needs `Authorization: Bearer <token>` (the scheme in any case): reads too, because
//! `/events/recent` returns event payloads and `/stats` and `/config` describe the setup. The
//! health probe and the Prometheus text (counts per event type, no payloads) stay open for
//! probes and scrapers. The web view's session cookie stands in for the header on `GET`
//! routes (see [`ui`](crate::ui)).
//!
//! `GET /events` and `GET /events/stream` take `?where=` too: a CEL condition over `type`, `id`,
//! `timestamp` and `data`, such as `where=data.tool_name == "Edit"` (URL-encoded).
//!
//! Errors are JSON `{"error": "..."}` with 400 (bad input), 401 (token), 404, 410 (an
//! `after=` position trimmed away), 413 (body over `CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES`), 422 (events
//! that break their schema: `"invalid": [{"index" or "line", "type", "violations"}]`), 503
//! (the event log cannot take events now: disk full, file unwritable; nothing published).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bus_core::{Attached, Endpoint};
use serde_json::json;

use crate::ingest::{BodyFormat, Ingest, IngestReply, parse_body};
use crate::read;
use bus_config::Secret;
use bus_config::{DebugSwitch, RuntimeSettings};

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct AppState {
    /// Publishes batches and reports ids.
    pub ingest: Ingest,
    /// The debug switch `PATCH /config` flips.
    pub debug: DebugSwitch,
    /// When set, every route but `GET /healthz` and `GET /metrics` needs
    /// `Authorization: Bearer <token>`.
    pub token: Option<Secret>,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// The longest pause while a request body arrives (408 after it).
    pub body_timeout: std::time::Duration,
    /// Bytes of request bodies read and parsed at once (503 past it).
    pub body_budget: crate::budget::BodyBudget,
    /// Which `Origin` and `Host` headers are accepted (see [`guard`](crate::guard)).
    pub(crate) browser: crate::guard::BrowserRules,
    /// The consumers wired to the bus: each may add figures to `GET /stats` and serve
    /// read-only endpoints (the metrics consumer's `GET /metrics`).
    pub consumers: Arc<[Arc<dyn Attached>]>,
    /// Turns true when the daemon starts shutting down: open streams end then.
    pub closing: tokio::sync::watch::Receiver<bool>,
    /// The web view's logins, accepted instead of the token on `GET` routes.
    pub(crate) sessions: crate::ui::Sessions,
    /// The event streams open now (`GET /stats`: `"sse"`).
    pub(crate) streams: crate::stream::OpenStreams,
    /// The content rules: `PATCH /config` reloads the schema file through them.
    pub rules: Option<Arc<bus_config::rules::Rules>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("token", &self.token)
            .field("max_body_bytes", &self.max_body_bytes)
            .field(
                "consumers",
                &self
                    .consumers
                    .iter()
                    .map(|c| c.describe())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// An error answer: a status and a JSON `{"error": message}` body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    /// A field beside `error`, such as the invalid events of a 422.
    detail: Option<(&'static str, serde_json::Value)>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            message: message.into(),
            detail: None,
        }
    }

    /// Adds `key: value` beside `error` in the body.
    pub(crate) fn with(mut self, key: &'static str, value: serde_json::Value) -> Self {
        self.detail = Some((key, value));
        self
    }

    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.message });
        if let Some((key, value)) = self.detail {
            body[key] = value;
        }
        let mut response = (self.status, axum::Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// The full router, with the consumers' endpoints, the body limit and the token check in
/// place.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/events", get(crate::read::list_events).post(post_events))
        .route("/events/stream", get(crate::stream::stream_events))
        .route(
            "/events/replay",
            axum::routing::post(crate::replay::replay_events),
        )
        .route("/events/recent", get(recent_events))
        .route("/stats", get(stats))
        .route("/healthz", get(healthz))
        .route("/config", get(get_config).patch(patch_config))
        .merge(crate::ui::routes());
    for mut endpoint in state.consumers.iter().flat_map(|c| c.endpoints()) {
        if endpoint.path == "/metrics" {
            // The log's own series follow the bus's.
            let render = endpoint.render.clone();
            let log = state.ingest.log().clone();
            let consumers = state.consumers.clone();
            endpoint.render = std::sync::Arc::new(move || {
                render() + &crate::backend::metrics_text(log.as_ref(), &consumers)
            });
        }
        router = router.route(endpoint.path, get(move || serve_endpoint(endpoint)));
    }
    if !state
        .consumers
        .iter()
        .flat_map(|c| c.endpoints())
        .any(|e| e.path == "/metrics")
    {
        router = router.route("/metrics", get(metrics_off));
    }
    router
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), require_token))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            crate::guard::browser_rules,
        ))
        .layer(DefaultBodyLimit::max(state.max_body_bytes))
        .layer(middleware::from_fn_with_state(
            state.body_budget.clone(),
            crate::budget::body_budget,
        ))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            state.body_timeout,
        ))
        .with_state(state)
}

/// Routes that stay open when a token is set: probes and scrapers, neither of which shows an
/// event's payload. Consumers' endpoints marked `public` join them.
const OPEN_ROUTES: [&str; 2] = ["/healthz", "/metrics"];

fn is_open(state: &AppState, path: &str) -> bool {
    OPEN_ROUTES.contains(&path)
        || state
            .consumers
            .iter()
            .flat_map(|c| c.endpoints())
            .any(|e| e.public && e.path == path)
}

async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token
        && !is_open(&state, request.uri().path())
        && !crate::ui::admits(&state, &request)
        && let Err(problem) = check_bearer(request.headers().get(header::AUTHORIZATION), token)
    {
        return ApiError::new(StatusCode::UNAUTHORIZED, problem).into_response();
    }
    next.run(request).await
}

/// Checks an `Authorization` header against the token; the error says what to send instead.
/// The scheme is matched in any case (RFC 7235), and the header must be `Bearer <token>`.
fn check_bearer(header: Option<&HeaderValue>, token: &Secret) -> Result<(), String> {
    const EXPECTED: &str = "send `Authorization: Bearer <CLAUDE_MPM_EVENTBUS_TOKEN>`";
    let Some(header) = header else {
        return Err(format!("this daemon needs a token: {EXPECTED}"));
    };
    let Ok(header) = header.to_str() else {
        return Err(format!(
            "the Authorization header is not plain ASCII text; {EXPECTED}"
        ));
    };
    let header = header.trim();
    let (scheme, credentials) = header.split_once([' ', '\t']).unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        // Only a known scheme is named back: without one, the first word is the token itself,
        // and an answer must never echo it.
        const KNOWN: [&str; 7] = [
            "Basic",
            "Digest",
            "Negotiate",
            "NTLM",
            "Token",
            "HOBA",
            "Mutual",
        ];
        return Err(
            match KNOWN.iter().find(|k| k.eq_ignore_ascii_case(scheme)) {
                Some(known) => format!(
                    "the Authorization header uses the {known} scheme, not Bearer; {EXPECTED}"
                ),
                None => {
                    format!("the Authorization header does not start with `Bearer `; {EXPECTED}")
                }
            },
        );
    }
    let credentials = credentials.trim();
    if credentials.is_empty() {
        return Err(format!(
            "the Authorization header has no token after Bearer; {EXPECTED}"
        ));
    }
    if token.matches(credentials) {
        Ok(())
    } else {
        Err("wrong token".to_owned())
    }
}

fn body_or_error(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        let status = rejection.status();
        if is_body_timeout(&rejection) {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "the body stopped arriving for longer than CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT; nothing of it was published",
            )
        } else if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                status,
                format!("the body is larger than {limit} bytes (CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES); send smaller batches"),
            )
        } else {
            ApiError::new(status, format!("could not read the body: {}", rejection.body_text()))
        }
    })
}

/// True when reading the body failed because tower-http's body timeout ran out.
fn is_body_timeout(rejection: &BytesRejection) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(rejection);
    while let Some(e) = source {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        source = e.source();
    }
    false
}

async fn post_events(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<IngestReply>, ApiError> {
    let want_ids = match query.get("ids").map(|v| bus_config::parse_bool(v)) {
        None => true,
        Some(Ok(b)) => b,
        Some(Err(expected)) => {
            return Err(ApiError::bad_request(format!(
                "query parameter ids: expected {expected}"
            )));
        }
    };
    let body = body_or_error(body, state.max_body_bytes)?;
    let format = BodyFormat::from_content_type(
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
    );
    let events = parse_body(&body, format).map_err(ApiError::bad_request)?;
    crate::rules::refuse_invalid(state.ingest.bus(), &events, format, &body)?;
    let mut reply = state
        .ingest
        .ingest(events)
        .await
        .map_err(store_unavailable)?;
    if !want_ids {
        reply.ids = Vec::new();
    }
    Ok(axum::Json(reply))
}

async fn recent_events(
    State(state): State<AppState>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match query.get("limit") {
        None => 10,
        Some(raw) => raw
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= read::MAX_PAGE)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "query parameter limit={raw:?}: expected a whole number from 0 to {}, such as limit=10 (page through more with GET /events)",
                    read::MAX_PAGE
                ))
            })?,
    };
    let log = state.ingest.log().as_ref();
    let events = log.read_last(limit).await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the event log cannot be read now: {e}"),
        )
    })?;
    let mut body = String::with_capacity(2 + crate::event_json::json_size(&events));
    body.push('[');
    let mut writer = read::EventJson::new();
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        writer.write(log, event.borrowed(), &mut body);
    }
    body.push(']');
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

async fn stats(State(state): State<AppState>) -> Response {
    let mut stats = json!(state.ingest.bus().stats());
    let log = state.ingest.log();
    stats["store"] = json!(log.stats());
    if let Some(health) = log.health() {
        stats["store"]["health"] = crate::backend::health_json(&log.stats().backend, &health);
    }
    stats["history_bytes"] = json!(state.ingest.bus().history_bytes());
    stats["body_budget"] = json!({
        "bytes": state.body_budget.total_bytes(),
        "in_use_bytes": state.body_budget.in_use_bytes(),
    });
    stats["sse"] = json!({ "open": state.streams.count() });
    for (key, figures) in state.consumers.iter().filter_map(|c| c.stats()) {
        stats[key] = figures;
    }
    if let Some(rules) = &state.rules {
        let invalid = rules.invalid();
        stats["events_invalid"] = json!(invalid.total);
        stats["events_invalid_by_type"] = json!(invalid.by_type);
    }
    axum::Json(stats).into_response()
}

async fn serve_endpoint(endpoint: Endpoint) -> Response {
    let body = (endpoint.render)();
    ([(header::CONTENT_TYPE, endpoint.content_type)], body).into_response()
}

async fn metrics_off() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "metrics are off: start the daemon with CLAUDE_MPM_EVENTBUS_METRICS=true (and the `metrics` feature)",
    )
}

async fn healthz(State(state): State<AppState>) -> Response {
    axum::Json(crate::backend::healthz(state.ingest.log().as_ref())).into_response()
}

async fn get_config(State(state): State<AppState>) -> Response {
    axum::Json(bus_config::current_with_consumers(
        state.ingest.bus(),
        &state.debug,
        &state.consumers,
    ))
    .into_response()
}

async fn patch_config(
    State(state): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body_or_error(body, state.max_body_bytes)?;
    const EXPECTED: &str = "expected an object with any of enabled (bool), debug (bool), history_size (number), filters (array of patterns), filter_where (CEL), reload_schemas (bool), relay_rate_limit and log_rate_limit (strings such as \"200/s\" or \"off\")";
    // serde reads a struct from a JSON array by position too: `[null, null, 5]` would set
    // history_size. Only an object names what it changes.
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::bad_request(format!(
            "the body is not a JSON object; {EXPECTED}, such as {{\"history_size\": 500}}"
        )));
    }
    let settings: RuntimeSettings = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("{e}; {EXPECTED}")))?;
    let now = settings
        .apply_with(
            state.ingest.bus(),
            &state.debug,
            state.rules.as_deref(),
            &state.consumers,
        )
        .map_err(|problems| ApiError::bad_request(problems.join("; ")))?;
    tracing::info!(?settings, "runtime settings changed");
    Ok(axum::Json(now).into_response())
}

/// A store that cannot take the events now (disk full, file unwritable): 503, naming the
/// cause; nothing of the batch was published.
pub(crate) fn store_unavailable(e: bus_store::StoreError) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the event log cannot take events now, nothing of this body was published: {e}"),
    )
}

async fn not_found(method: Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no route {method} {}; see GET /healthz, /stats, /events/recent, /metrics, /config and POST /events",
            uri.path()
        ),
    )
}
