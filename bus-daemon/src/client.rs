//! The client side of `eventbus publish` and `eventbus hook`: send events to a running daemon.
//!
//! Blocking, one HTTP/1.1 request per call, over `ureq` without TLS, proxies or a runtime:
//! hooks start one process per event, so what the client costs to set up is paid every time.
//! Building a reqwest client and a tokio runtime cost ~65 ms of CPU per process; this costs
//! well under a millisecond.

use std::net::SocketAddr;
use std::time::Duration;

use crate::error::PublishError;
use crate::ingest::IngestReply;
use bus_config::Secret;

/// How long [`Client::new`] waits for the connection to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long [`Client::new`] waits for a whole exchange (a large NDJSON batch takes a while).
pub const TOTAL_TIMEOUT: Duration = Duration::from_secs(60);
/// The largest answer read: ids of a million events fit with room to spare.
const MAX_ANSWER_BYTES: u64 = 256 << 20;

/// Sends events to a daemon's `POST /events`.
#[derive(Debug)]
pub struct Client {
    addr: SocketAddr,
    token: Option<Secret>,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the daemon at `addr`, sending `token` as a bearer token when set; it
    /// waits `CONNECT_TIMEOUT` (3 s) to connect and `TOTAL_TIMEOUT` (60 s) for the whole
    /// exchange.
    ///
    /// Proxies are ignored: the daemon is addressed by `IP:PORT`, almost always loopback, and
    /// `HTTP_PROXY`/`ALL_PROXY` are meant for the outside world.
    pub fn new(addr: SocketAddr, token: Option<Secret>) -> Result<Self, PublishError> {
        Ok(Self::with_deadlines(
            addr,
            token,
            CONNECT_TIMEOUT,
            TOTAL_TIMEOUT,
        ))
    }

    /// A client that gives up on the daemon after `deadline`, connection included: what a
    /// hook uses, since it must never hold up its host.
    pub fn with_deadline(addr: SocketAddr, token: Option<Secret>, deadline: Duration) -> Self {
        Self::with_deadlines(addr, token, deadline, deadline)
    }

    fn with_deadlines(
        addr: SocketAddr,
        token: Option<Secret>,
        connect: Duration,
        total: Duration,
    ) -> Self {
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_connect(Some(connect))
            .timeout_global(Some(total))
            .max_idle_connections(0)
            .build()
            .new_agent();
        Client { addr, token, agent }
    }

    /// The daemon's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `method` to `path_and_query` (such as `/events?limit=10`) with an optional
    /// body, and returns the JSON answer; a non-2xx answer is [`PublishError::Refused`] with
    /// the daemon's message.
    pub fn call_json(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<serde_json::Value, PublishError> {
        let text = self.call_text(method, path_and_query, body)?;
        serde_json::from_str::<serde_json::Value>(&text).map_err(|e| self.unexpected(&e, &text))
    }

    /// An answer that is not the JSON the daemon sends, as a refusal quoting it.
    pub(crate) fn unexpected(&self, error: &serde_json::Error, text: &str) -> PublishError {
        PublishError::Refused {
            addr: self.addr,
            status: 200,
            message: format!("unexpected answer ({error}): {text}"),
        }
    }

    /// A 2xx answer that is not what the route answers.
    pub(crate) fn unexpected_text(&self, text: &str) -> PublishError {
        PublishError::Refused {
            addr: self.addr,
            status: 200,
            message: format!("unexpected answer: {text}"),
        }
    }

    /// Like [`call_json`](Self::call_json), but returns the 2xx answer's text unparsed, for
    /// callers that parse it their own (cheaper) way.
    pub fn call_text(
        &self,
        method: &str,
        path_and_query: &str,
        body: Option<&[u8]>,
    ) -> Result<String, PublishError> {
        let unreachable = |e: ureq::Error| PublishError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        };
        let url = format!("http://{}{path_and_query}", self.addr);
        let token = self
            .token
            .as_ref()
            .map(|t| format!("Bearer {}", t.expose()));
        let mut response = if method == "POST" {
            let mut request = self
                .agent
                .post(&url)
                .header("content-type", "application/json");
            if let Some(token) = &token {
                request = request.header("authorization", token);
            }
            request.send(body.unwrap_or(b"{}")).map_err(unreachable)?
        } else {
            let mut request = self.agent.get(&url);
            if let Some(token) = &token {
                request = request.header("authorization", token);
            }
            request.call().map_err(unreachable)?
        };
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(unreachable)?;
        if !(200..300).contains(&status) {
            return Err(refused(self.addr, status, text));
        }
        Ok(text)
    }

    /// Opens `GET path_and_query` as a long-lived stream (Server-Sent Events), sending
    /// `last_event_id` when set; no overall deadline applies, only the connection timeout.
    pub fn open_stream(
        &self,
        path_and_query: &str,
        last_event_id: Option<&str>,
    ) -> Result<Box<dyn std::io::BufRead + Send>, PublishError> {
        let agent = ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build()
            .new_agent();
        let mut request = agent.get(format!("http://{}{path_and_query}", self.addr));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.expose()));
        }
        if let Some(id) = last_event_id {
            request = request.header("last-event-id", id);
        }
        let response = request.call().map_err(|e| PublishError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let text = response.into_body().read_to_string().unwrap_or_default();
            return Err(refused(self.addr, status, text));
        }
        Ok(Box::new(std::io::BufReader::new(
            response.into_body().into_reader(),
        )))
    }

    /// Publishes one event.
    pub fn publish(
        &self,
        event_type: &str,
        data: &serde_json::Value,
    ) -> Result<IngestReply, PublishError> {
        let body = serde_json::to_vec(&serde_json::json!({ "type": event_type, "data": data }))
            .map_err(|e| PublishError::Input(e.to_string()))?;
        self.send(&body, "application/json")
    }

    /// Publishes a body already serialized as JSON: one `{"type", "data"}` object or an
    /// array of them.
    pub fn publish_body(&self, body: &[u8]) -> Result<IngestReply, PublishError> {
        self.send(body, "application/json")
    }

    /// Publishes an NDJSON body (one `{"type", "data"}` object per line) as one batch, in
    /// one request.
    pub fn publish_ndjson(&self, body: &[u8]) -> Result<IngestReply, PublishError> {
        self.send(body, "application/x-ndjson")
    }

    fn send(&self, body: &[u8], content_type: &str) -> Result<IngestReply, PublishError> {
        let unreachable = |e: ureq::Error| PublishError::Unreachable {
            addr: self.addr,
            reason: e.to_string(),
        };
        let mut request = self
            .agent
            .post(format!("http://{}/events", self.addr))
            .header("content-type", content_type);
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {}", token.expose()));
        }
        let mut response = request.send(body).map_err(unreachable)?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_ANSWER_BYTES)
            .read_to_string()
            .map_err(unreachable)?;
        if !(200..300).contains(&status) {
            return Err(refused(self.addr, status, text));
        }
        serde_json::from_str(&text).map_err(|e| PublishError::Refused {
            addr: self.addr,
            status,
            message: format!("unexpected answer ({e}): {text}"),
        })
    }
}

/// A non-2xx answer: the daemon's `{"error": ...}` message, else the body as it came.
fn refused(addr: SocketAddr, status: u16, text: String) -> PublishError {
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_owned))
        .unwrap_or(text);
    PublishError::Refused {
        addr,
        status,
        message,
    }
}
