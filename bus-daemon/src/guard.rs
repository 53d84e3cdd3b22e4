//! Browser rules: which web pages and which `Host` names may use the API.
//!
//! Without a token, any page a browser opens could otherwise post events (a `text/plain` or
//! form body needs no CORS preflight) or, through DNS rebinding, read `/events/recent`. So:
//!
//! - a request with an `Origin` header (browsers send one on every cross-origin request and
//!   on every POST) is refused with 403 unless that origin is the daemon's own
//!   (`http://` + the bound address, or a loopback name with its port) or listed in
//!   `CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS`; `Origin: null` (sandboxed frames, `file:` pages)
//!   is refused too. Without `Origin`, a `Sec-Fetch-Site: cross-site` or `same-site` request
//!   (a browser's no-cors fetch) is refused the same way.
//! - a request whose `Host` is not the bound address, `localhost`, `127.0.0.1` or `[::1]` with
//!   the daemon's port, or listed in `CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS`, is refused with 421.
//!   On an unspecified address (`0.0.0.0`, `[::]`) any IP address with the daemon's port is
//!   accepted: DNS rebinding needs a name.
//!
//! Clients that send no `Origin` (curl, hooks, `eventbus publish`) are not affected.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::{ApiError, AppState};

/// The origins and hosts a daemon accepts.
#[derive(Clone, Debug)]
pub(crate) struct BrowserRules {
    origins: Vec<String>,
    hosts: Vec<String>,
    port: u16,
    any_ip: bool,
}

impl BrowserRules {
    /// The rules of a daemon bound to `addr`, with the configured extra origins and hosts
    /// (already normalised by bus-config: lower case, origins as browsers serialise them).
    pub(crate) fn new(addr: SocketAddr, origins: &[String], hosts: &[String]) -> Self {
        let port = addr.port();
        let mut own_hosts = vec![
            format!("localhost:{port}"),
            format!("127.0.0.1:{port}"),
            format!("[::1]:{port}"),
            addr.to_string(),
        ];
        if port == 80 {
            own_hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(str::to_owned));
        }
        let mut all_origins: Vec<String> =
            own_hosts.iter().map(|h| format!("http://{h}")).collect();
        all_origins.extend(origins.iter().cloned());
        let mut all_hosts = own_hosts;
        all_hosts.extend(hosts.iter().cloned());
        BrowserRules {
            origins: all_origins,
            hosts: all_hosts,
            port,
            any_ip: addr.ip().is_unspecified(),
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
        self.origins.contains(&origin)
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.trim().to_ascii_lowercase();
        if self.hosts.contains(&host) {
            return true;
        }
        let (name, port) = split_host(&host);
        if port == Some(self.port) && self.hosts.iter().any(|h| h == name) {
            return true;
        }
        self.any_ip
            && port == Some(self.port)
            && name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok()
    }

    fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(host) = headers.get(header::HOST) {
            let host = host.to_str().unwrap_or("");
            if !self.host_allowed(host) {
                return Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "Host {host:?} is not this daemon's address (a DNS-rebinding page?); use http://127.0.0.1:{port} or http://localhost:{port}, or add the name to CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS",
                        port = self.port
                    ),
                ));
            }
        }
        match headers.get(header::ORIGIN) {
            Some(origin) => {
                let origin = origin.to_str().unwrap_or("");
                if !self.origin_allowed(origin) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "requests from web pages are refused: Origin {origin:?} is not allowed (add it to CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS to allow it)"
                        ),
                    ));
                }
            }
            None => {
                let site = headers
                    .get("sec-fetch-site")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("");
                if site.eq_ignore_ascii_case("cross-site") || site.eq_ignore_ascii_case("same-site")
                {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "requests from web pages are refused (Sec-Fetch-Site: {site}); allowed origins are listed in CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS"
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// `host` or `host:port`, IPv6 literals in brackets.
fn split_host(host: &str) -> (&str, Option<u16>) {
    let colon = if host.starts_with('[') {
        host.find("]:").map(|i| i + 1)
    } else {
        host.rfind(':')
    };
    match colon {
        Some(i) => match host[i + 1..].parse() {
            Ok(port) => (&host[..i], Some(port)),
            Err(_) => (host, None),
        },
        None => (host, None),
    }
}

/// The middleware: refuses what the rules do not allow, before any other check.
pub(crate) async fn browser_rules(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(refusal) = state.browser.check(request.headers()) {
        return refusal.into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn own_and_listed_origins_pass_others_do_not() {
        let rules = BrowserRules::new(
            "127.0.0.1:8770".parse().unwrap(),
            &["http://localhost:3000".to_owned()],
            &["eventbus.local".to_owned()],
        );
        for ok in [
            &[("host", "127.0.0.1:8770")][..],
            &[
                ("host", "localhost:8770"),
                ("origin", "http://localhost:8770"),
            ],
            &[("host", "[::1]:8770"), ("origin", "http://localhost:3000")],
            &[("host", "EventBus.Local:8770")],
            &[
                ("host", "localhost:8770"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[],
        ] {
            assert!(rules.check(&headers(ok)).is_ok(), "{ok:?}");
        }
        for (bad, status) in [
            (&[("host", "evil.example:8770")][..], 421),
            (&[("host", "localhost:9999")], 421),
            (&[("host", "localhost")], 421),
            (&[("host", "127.0.0.1:8770"), ("origin", "null")], 403),
            (&[("origin", "http://evil.example")], 403),
            (&[("origin", "http://localhost:3001")], 403),
            (&[("sec-fetch-site", "cross-site")], 403),
        ] {
            let err = rules.check(&headers(bad)).unwrap_err();
            assert_eq!(err.into_response().status().as_u16(), status, "{bad:?}");
        }
    }

    #[test]
    fn an_unspecified_address_takes_any_ip_not_any_name() {
        let rules = BrowserRules::new("0.0.0.0:8770".parse().unwrap(), &[], &[]);
        assert!(rules.host_allowed("192.168.1.5:8770"));
        assert!(rules.host_allowed("[fe80::1]:8770"));
        assert!(!rules.host_allowed("192.168.1.5:8771"));
        assert!(!rules.host_allowed("rebind.evil.example:8770"));
    }
}
