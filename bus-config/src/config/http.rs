//! The HTTP section (`CLAUDE_MPM_EVENTBUS_HTTP_ADDR`, `_MAX_BODY_BYTES`, `_TOKEN`, the
//! browser rules `_ALLOWED_ORIGINS` and `_ALLOWED_HOSTS`, the connection limits
//! `_IDLE_TIMEOUT`, `_HEADER_TIMEOUT`, `_BODY_TIMEOUT`, `_MAX_CONNECTIONS`), the [`Secret`]
//! that holds the token, and [`ClientSettings`] for `eventbus publish`.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use serde::Serialize;
use serde_json::Value;

use super::reader::Reader;
use crate::error::ConfigError;
use crate::parse;

/// The default listening address, `127.0.0.1:8770`.
pub const DEFAULT_HTTP_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::LOCALHOST,
    8770,
));

/// A secret that never shows itself in `Debug`, `Display` or serialized output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when `candidate` equals the secret (compared in constant time).
    pub fn matches(&self, candidate: &str) -> bool {
        parse::constant_time_eq(self.0.as_bytes(), candidate.as_bytes())
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "**** ({} characters)", self.0.chars().count())
    }
}

impl Serialize for Secret {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The HTTP server's settings.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HttpSettings {
    /// `CLAUDE_MPM_EVENTBUS_HTTP_ADDR`.
    pub addr: SocketAddr,
    /// `CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES`.
    pub max_body_bytes: usize,
    /// `CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES`: request bodies read and parsed at once.
    pub body_budget_bytes: usize,
    /// `CLAUDE_MPM_EVENTBUS_TOKEN` (masked when printed).
    pub token: Option<Secret>,
    /// `CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS`: web origins (`scheme://host[:port]`, as
    /// browsers send them) allowed besides the daemon's own.
    pub allowed_origins: Vec<String>,
    /// `CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS`: `Host` headers allowed besides the bound address
    /// and the loopback names, lower case; `host` allows any port, `host:port` one.
    pub allowed_hosts: Vec<String>,
    /// `CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT`: a connection with nothing in progress is closed
    /// after this long.
    pub idle_timeout: Duration,
    /// `CLAUDE_MPM_EVENTBUS_HEADER_TIMEOUT`: a request's headers must arrive within this
    /// time of its first byte.
    pub header_timeout: Duration,
    /// `CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT`: the longest pause while a request body arrives.
    pub body_timeout: Duration,
    /// `CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS`: open connections kept at most (the daemon
    /// lowers it below its file limit at startup).
    pub max_connections: usize,
}

/// The default of `CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1000;

const HOUR: Duration = Duration::from_secs(3600);

impl HttpSettings {
    pub(crate) fn read(r: &mut Reader) -> Self {
        HttpSettings {
            addr: read_addr(r),
            max_body_bytes: r.number(
                "CLAUDE_MPM_EVENTBUS_MAX_BODY_BYTES",
                16 * 1024 * 1024,
                1,
                1024 * 1024 * 1024,
            ) as usize,
            body_budget_bytes: r.number(
                "CLAUDE_MPM_EVENTBUS_BODY_BUDGET_BYTES",
                64 * 1024 * 1024,
                1,
                1 << 40,
            ) as usize,
            token: read_token(r),
            allowed_origins: r.value(
                "CLAUDE_MPM_EVENTBUS_ALLOWED_ORIGINS",
                Vec::new(),
                parse_origins,
                |v| Value::from(v.clone()),
            ),
            allowed_hosts: r.value(
                "CLAUDE_MPM_EVENTBUS_ALLOWED_HOSTS",
                Vec::new(),
                parse_hosts,
                |v| Value::from(v.clone()),
            ),
            idle_timeout: r.positive_duration(
                "CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT",
                Duration::from_secs(60),
                HOUR,
            ),
            header_timeout: r.positive_duration(
                "CLAUDE_MPM_EVENTBUS_HEADER_TIMEOUT",
                Duration::from_secs(10),
                HOUR,
            ),
            body_timeout: r.positive_duration(
                "CLAUDE_MPM_EVENTBUS_BODY_TIMEOUT",
                Duration::from_secs(30),
                HOUR,
            ),
            max_connections: r.number(
                "CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS",
                DEFAULT_MAX_CONNECTIONS as u64,
                1,
                1_000_000,
            ) as usize,
        }
    }
}

/// Origins as browsers send them: `scheme://host[:port]`, lower case, default port left out.
fn parse_origins(s: &str) -> Result<Vec<String>, String> {
    const EXPECTED: &str =
        "comma-separated origins such as http://localhost:3000 (scheme, host and port, no path)";
    let mut origins = Vec::new();
    for item in crate::parse::list(s) {
        let url = url::Url::parse(&item).map_err(|_| format!("{EXPECTED}; {item:?} is not one"))?;
        let origin = url.origin();
        if !origin.is_tuple() || !matches!(url.path(), "" | "/") || url.query().is_some() {
            return Err(format!("{EXPECTED}; {item:?} is not one"));
        }
        origins.push(origin.ascii_serialization());
    }
    Ok(origins)
}

/// Host names, or `host:port`, lower case.
fn parse_hosts(s: &str) -> Result<Vec<String>, String> {
    let hosts = crate::parse::list(s);
    for host in &hosts {
        if host.contains(['/', '@', ' ']) || host.contains("://") {
            return Err(format!(
                "comma-separated host names or host:port, such as eventbus.local:8770; {host:?} is not one"
            ));
        }
    }
    Ok(hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect())
}

fn read_addr(r: &mut Reader) -> SocketAddr {
    r.value(
        "CLAUDE_MPM_EVENTBUS_HTTP_ADDR",
        DEFAULT_HTTP_ADDR,
        parse_addr,
        |a| Value::String(a.to_string()),
    )
}

fn read_token(r: &mut Reader) -> Option<Secret> {
    r.value(
        "CLAUDE_MPM_EVENTBUS_TOKEN",
        None,
        |s| parse_token(s).map(Some),
        |t| {
            t.as_ref()
                .map_or(Value::Null, |t| Value::String(t.to_string()))
        },
    )
}

/// Parses an `IP:PORT` listening or daemon address; the error says what is accepted.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    s.trim()
        .parse::<SocketAddr>()
        .map_err(|_| "IP:PORT such as 127.0.0.1:8770 (or [::1]:8770)".to_owned())
}

fn parse_token(s: &str) -> Result<Secret, String> {
    if s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err("non-empty text without whitespace (unset the variable to turn auth off)".into())
    } else {
        Ok(Secret::new(s))
    }
}

/// What `eventbus publish` needs: where the daemon is, and the token to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientSettings {
    /// `CLAUDE_MPM_EVENTBUS_HTTP_ADDR`.
    pub addr: SocketAddr,
    /// `CLAUDE_MPM_EVENTBUS_TOKEN`.
    pub token: Option<Secret>,
}

impl ClientSettings {
    /// Reads the two client variables from the environment; the daemon's other settings are
    /// not the client's business, so their values are not checked here.
    pub fn from_env() -> Result<Self, ConfigError> {
        let pairs = ["CLAUDE_MPM_EVENTBUS_HTTP_ADDR", "CLAUDE_MPM_EVENTBUS_TOKEN"]
            .into_iter()
            .filter_map(|k| {
                std::env::var_os(k).map(|v| (k.to_owned(), v.to_string_lossy().into_owned()))
            });
        Self::from_iter(pairs)
    }

    /// Reads the client variables from `(name, value)` pairs.
    #[allow(clippy::should_implement_trait)] // fallible, so not `FromIterator`
    pub fn from_iter<I>(pairs: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let raw: BTreeMap<String, String> = super::read_raw(pairs)?;
        let mut r = Reader::new(raw);
        let settings = ClientSettings {
            addr: read_addr(&mut r),
            token: read_token(&mut r),
        };
        if r.errors.is_empty() {
            Ok(settings)
        } else {
            Err(ConfigError::Invalid { errors: r.errors })
        }
    }
}
