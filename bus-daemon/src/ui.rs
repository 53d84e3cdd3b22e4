//! The web view: one page on the daemon's own port (`GET /`), its assets under `/ui/`, all
//! compiled into the binary (no CDN: many machines have no internet).
//!
//! The page reads only the API every other client uses: the live stream from
//! `GET /events/stream` (resuming with `Last-Event-ID`), history from `GET /events`, figures
//! from `GET /stats`. It writes every payload with `textContent`, and a strict
//! Content-Security-Policy (no inline script, nothing from another origin) backs that up.
//!
//! With `CLAUDE_MPM_EVENTBUS_TOKEN` set, `GET /` without a session is the login form alone.
//! `POST /ui/login` (a form field `token`) checks the token and answers with a session
//! cookie, `HttpOnly` and `SameSite=Strict`, that the token check accepts on `GET` routes
//! only: the stream (`EventSource`-style reads cannot send an `Authorization` header) and the
//! reads the page makes. The token itself never goes into a URL or a cookie, and a session
//! cannot publish. `POST /ui/logout` ends the session.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use cookie::{Cookie, SameSite};
use rand::RngCore;
use serde::Deserialize;

use crate::http::AppState;

const INDEX_HTML: &str = include_str!("../ui/index.html");
const LOGIN_HTML: &str = include_str!("../ui/login.html");
const APP_JS: &str = include_str!("../ui/app.js");
const STYLE_CSS: &str = include_str!("../ui/style.css");
const ICON_SVG: &str = include_str!("../ui/icon.svg");

/// The policy every UI answer carries: scripts, styles, images and connections from the
/// daemon itself only, no inline script or style element, no framing, forms post here only.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// How long a login lasts.
const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);
/// Sessions kept at most; a new login beyond it ends the oldest.
const MAX_SESSIONS: usize = 256;

/// Paths served without a token or session: the page shell (which is the login form until
/// there is a session), its static assets, the login, and the logout (which ends only the
/// session its cookie names). None shows a payload.
const PUBLIC_PATHS: [&str; 6] = [
    "/",
    "/ui/app.js",
    "/ui/style.css",
    "/ui/icon.svg",
    "/ui/login",
    "/ui/logout",
];

/// The web view's URL for a daemon bound to `addr` (loopback for an unspecified address).
///
/// ```
/// assert_eq!(bus_daemon::ui::page_url("0.0.0.0:8770".parse().unwrap()), "http://127.0.0.1:8770/");
/// assert_eq!(bus_daemon::ui::page_url("[::1]:9".parse().unwrap()), "http://[::1]:9/");
/// ```
pub fn page_url(addr: std::net::SocketAddr) -> String {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}/")
}

/// The page's routes, merged into the daemon's router.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(page))
        .route(
            "/ui/app.js",
            get(|| asset("text/javascript; charset=utf-8", APP_JS)),
        )
        .route(
            "/ui/style.css",
            get(|| asset("text/css; charset=utf-8", STYLE_CSS)),
        )
        .route("/ui/icon.svg", get(|| asset("image/svg+xml", ICON_SVG)))
        .route("/ui/info", get(info))
        .route("/ui/login", post(login))
        .route("/ui/logout", post(logout))
}

/// True when the token check should let `request` through without a bearer token: a public
/// UI path, or a `GET`/`HEAD` carrying a live session cookie.
pub(crate) fn admits(state: &AppState, request: &Request) -> bool {
    PUBLIC_PATHS.contains(&request.uri().path())
        || (matches!(*request.method(), Method::GET | Method::HEAD)
            && state.sessions.valid(request.headers()))
}

/// The logins of the web view: random session ids, each with its expiry.
#[derive(Clone)]
pub(crate) struct Sessions {
    /// The cookie's name carries the port: browsers share cookies between the ports of one
    /// host, and two daemons on one machine must not overwrite each other's.
    cookie: Arc<str>,
    live: Arc<Mutex<HashMap<String, Instant>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let count = self
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        f.debug_struct("Sessions")
            .field("cookie", &self.cookie)
            .field("live", &count)
            .finish()
    }
}

impl Sessions {
    /// No sessions yet, for a daemon on `port`.
    pub(crate) fn new(port: u16) -> Self {
        Sessions {
            cookie: format!("eventbus_session_{port}").into(),
            live: Arc::default(),
        }
    }

    /// Starts a session; returns its id.
    fn open(&self) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, expires| *expires > now);
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, e)| **e).map(|(k, _)| k.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), now + SESSION_LIFETIME);
        id
    }

    /// The session id in the request's cookies, if any.
    fn id_in<'h>(&self, headers: &'h HeaderMap) -> impl Iterator<Item = String> + 'h {
        let name = self.cookie.clone();
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .filter(move |c| c.name() == &*name)
            .map(|c| c.value().to_owned())
    }

    /// True when the request carries a session that has not expired.
    pub(crate) fn valid(&self, headers: &HeaderMap) -> bool {
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        self.id_in(headers)
            .any(|id| live.get(&id).is_some_and(|expires| *expires > now))
    }

    fn close(&self, headers: &HeaderMap) {
        let ids: Vec<String> = self.id_in(headers).collect();
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        for id in ids {
            live.remove(&id);
        }
    }

    fn set_cookie(&self, value: String, max_age: Duration) -> HeaderValue {
        let cookie = Cookie::build((self.cookie.to_string(), value))
            .path("/")
            .http_only(true)
            .same_site(SameSite::Strict)
            .max_age(cookie::time::Duration::seconds(max_age.as_secs() as i64))
            .build();
        HeaderValue::from_str(&cookie.to_string()).expect("a cookie of hex digits is a header")
    }
}

/// Adds the headers every UI answer carries.
fn secured(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        // Not `no-referrer`: with it, Chrome sends `Origin: null` on the login form's POST,
        // which the browser rules refuse.
        (header::REFERRER_POLICY, "same-origin"),
        // A new binary serves new assets: the browser must ask again.
        (header::CACHE_CONTROL, "no-cache"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    secured(([(header::CONTENT_TYPE, content_type)], body).into_response())
}

fn html(status: StatusCode, body: String) -> Response {
    secured(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

/// The login form, with a fixed message (never anything the request sent).
fn login_page(status: StatusCode, message: &str) -> Response {
    html(status, LOGIN_HTML.replace("<!--message-->", message))
}

/// `GET /`: the page, or the login form alone when a token is set and there is no session.
async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.token.is_some() && !state.sessions.valid(&headers) {
        return login_page(StatusCode::OK, "");
    }
    html(StatusCode::OK, INDEX_HTML.to_owned())
}

/// `GET /ui/info`: what the page adapts to.
async fn info(State(state): State<AppState>) -> Response {
    secured(
        axum::Json(serde_json::json!({
            // The page's copy-as-curl adds an Authorization header when this is true.
            "auth": state.token.is_some(),
            // The stream takes `?where=` (a CEL condition): the page shows its condition box.
            "where": true,
            "version": env!("CARGO_PKG_VERSION"),
        }))
        .into_response(),
    )
}

/// The login form's body.
#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

/// `POST /ui/login`: a right token gets a session cookie and goes to the page.
async fn login(
    State(state): State<AppState>,
    form: Result<Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Some(token) = &state.token else {
        return see_page(None);
    };
    let Ok(Form(form)) = form else {
        return login_page(
            StatusCode::BAD_REQUEST,
            "<p class=\"error\">Send the form's <code>token</code> field.</p>",
        );
    };
    if !token.matches(form.token.trim()) {
        tracing::warn!("web view: login with a wrong token");
        return login_page(
            StatusCode::UNAUTHORIZED,
            "<p class=\"error\" id=\"login-error\">Wrong token.</p>",
        );
    }
    let id = state.sessions.open();
    see_page(Some(state.sessions.set_cookie(id, SESSION_LIFETIME)))
}

/// `POST /ui/logout`: ends the session and clears the cookie.
async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    state.sessions.close(&headers);
    see_page(Some(
        state.sessions.set_cookie(String::new(), Duration::ZERO),
    ))
}

/// 303 to the page, setting `cookie` on the way.
fn see_page(cookie: Option<HeaderValue>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    secured(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_an_issued_session_on_this_port_is_valid() {
        let sessions = Sessions::new(8770);
        let id = sessions.open();
        assert_eq!(id.len(), 64);
        assert!(sessions.valid(&with_cookie(&format!("a=b; eventbus_session_8770={id}"))));
        assert!(!sessions.valid(&with_cookie(&format!("eventbus_session_8771={id}"))));
        assert!(!sessions.valid(&with_cookie("eventbus_session_8770=00")));
        assert!(!sessions.valid(&HeaderMap::new()));
        sessions.close(&with_cookie(&format!("eventbus_session_8770={id}")));
        assert!(!sessions.valid(&with_cookie(&format!("eventbus_session_8770={id}"))));
    }

    #[test]
    fn the_cookie_is_http_only_and_strict() {
        let text = Sessions::new(1)
            .set_cookie("abc".into(), SESSION_LIFETIME)
            .to_str()
            .unwrap()
            .to_owned();
        for part in [
            "eventbus_session_1=abc",
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=43200",
        ] {
            assert!(text.contains(part), "{text} lacks {part}");
        }
    }

    #[test]
    fn sessions_are_capped() {
        let sessions = Sessions::new(1);
        for _ in 0..MAX_SESSIONS + 10 {
            sessions.open();
        }
        assert_eq!(sessions.live.lock().unwrap().len(), MAX_SESSIONS);
    }
}
