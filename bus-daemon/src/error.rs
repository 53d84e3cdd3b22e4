//! The daemon's and the client's errors.

use std::net::SocketAddr;

use bus_config::{ConfigError, WiringError};

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listening address is not loopback and no token is set: anyone on the network could
    /// publish.
    #[error(
        "refusing to listen on {addr} without a token: that address is reachable from other machines.\n\
         Either set CLAUDE_MPM_EVENTBUS_TOKEN to a secret (clients then send `Authorization: Bearer <token>`; \
         `eventbus publish` does so by itself), or listen on a loopback address such as \
         CLAUDE_MPM_EVENTBUS_HTTP_ADDR=127.0.0.1:{port}",
        port = addr.port()
    )]
    NonLoopbackWithoutToken {
        /// The address asked for.
        addr: SocketAddr,
    },
    /// The listening socket could not be opened (address in use, no permission, ...).
    #[error("cannot listen on {addr}: {source}{hint}", hint = bind_hint(source))]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The bus or a consumer could not be set up.
    #[error(transparent)]
    Wiring(#[from] WiringError),
    /// The event log could not be opened: not a database, corrupt, locked by another daemon,
    /// from a newer eventbus, or unwritable. The file is left as it was.
    #[error("cannot open the event log {}: {source}{hint}", path.display(), hint = store_hint(source))]
    Store {
        /// The store file (`CLAUDE_MPM_EVENTBUS_STORE`).
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: bus_store::StoreError,
    },
    /// The event log on Redis (`CLAUDE_MPM_EVENTBUS_REDIS_URL`) could not be opened: the URL
    /// is refused, the server cannot be reached, or the stream holds entries eventbus did not
    /// write.
    #[error(
        "cannot open the event log on Redis {url}, stream {stream}: {source}\n\
         (check CLAUDE_MPM_EVENTBUS_REDIS_URL and that the server is up, or unset it for the local store)"
    )]
    Redis {
        /// The URL, its password masked.
        url: String,
        /// `CLAUDE_MPM_EVENTBUS_REDIS_STREAM`.
        stream: String,
        /// Why.
        #[source]
        source: bus_store::StoreError,
    },
    /// The HTTP server failed while running.
    #[error("the HTTP server failed: {0}")]
    Server(#[source] std::io::Error),
}

fn store_hint(e: &bus_store::StoreError) -> &'static str {
    use bus_store::StoreError as E;
    match e {
        E::Locked { .. } => {
            "\n(another eventbus daemon uses this store: stop it, or set CLAUDE_MPM_EVENTBUS_STORE to another file)"
        }
        E::NotADatabase { .. } | E::NotAStore { .. } | E::Corrupt { .. } => {
            "\n(the file was left untouched: move it aside, or set CLAUDE_MPM_EVENTBUS_STORE to another file, or to memory)"
        }
        E::NewerSchema { .. } => {
            "\n(it was written by a newer eventbus: run that version, or set CLAUDE_MPM_EVENTBUS_STORE to another file)"
        }
        _ => "",
    }
}

fn bind_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::AddrInUse => {
            " (is another eventbus already running? stop it, or set CLAUDE_MPM_EVENTBUS_HTTP_ADDR to another address)"
        }
        std::io::ErrorKind::PermissionDenied => {
            " (ports below 1024 need privileges: set CLAUDE_MPM_EVENTBUS_HTTP_ADDR to a higher port)"
        }
        std::io::ErrorKind::AddrNotAvailable => {
            " (this machine has no such address: set CLAUDE_MPM_EVENTBUS_HTTP_ADDR to one of its own, such as 127.0.0.1:8770)"
        }
        _ => "",
    }
}

/// Why `eventbus publish` failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The daemon could not be reached at all.
    #[error(
        "cannot reach the eventbus daemon at http://{addr}: {reason}\n\
         Is it running? Start it with `eventbus serve`, or point to it with --addr or CLAUDE_MPM_EVENTBUS_HTTP_ADDR."
    )]
    Unreachable {
        /// Where it was looked for.
        addr: SocketAddr,
        /// What the connection attempt said.
        reason: String,
    },
    /// The daemon answered with an error status.
    #[error("the eventbus daemon at http://{addr} refused the request ({status}): {message}")]
    Refused {
        /// The daemon's address.
        addr: SocketAddr,
        /// The HTTP status.
        status: u16,
        /// The daemon's explanation.
        message: String,
    },
    /// The command line input is not valid (bad JSON payload, unreadable stdin, ...).
    #[error("{0}")]
    Input(String),
}
