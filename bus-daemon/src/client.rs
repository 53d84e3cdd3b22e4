//! The client side of `eventbus publish`: send events to a running daemon.

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use crate::error::PublishError;
use crate::ingest::IngestReply;
use bus_config::Secret;

/// Sends events to a daemon's `POST /events`.
#[derive(Clone, Debug)]
pub struct Client {
    addr: SocketAddr,
    token: Option<Secret>,
    http: reqwest::Client,
}

impl Client {
    /// A client for the daemon at `addr`, sending `token` as a bearer token when set.
    ///
    /// Proxies are ignored: the daemon is addressed by `IP:PORT`, almost always loopback, and
    /// reqwest would otherwise send even loopback requests to `HTTP_PROXY`/`ALL_PROXY`.
    pub fn new(addr: SocketAddr, token: Option<Secret>) -> Result<Self, PublishError> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| PublishError::Input(format!("cannot set up the HTTP client: {e}")))?;
        Ok(Client { addr, token, http })
    }

    /// Publishes one event.
    pub async fn publish(
        &self,
        event_type: &str,
        data: serde_json::Value,
    ) -> Result<IngestReply, PublishError> {
        let body = serde_json::to_vec(&serde_json::json!({ "type": event_type, "data": data }))
            .map_err(|e| PublishError::Input(e.to_string()))?;
        self.send(body, "application/json").await
    }

    /// Publishes an NDJSON body (one `{"type", "data"}` object per line) as one batch.
    pub async fn publish_ndjson(&self, body: Vec<u8>) -> Result<IngestReply, PublishError> {
        self.send(body, "application/x-ndjson").await
    }

    async fn send(&self, body: Vec<u8>, content_type: &str) -> Result<IngestReply, PublishError> {
        let url = format!("http://{}/events", self.addr);
        let mut request = self
            .http
            .post(url)
            .header(CONTENT_TYPE, content_type)
            .body(body);
        if let Some(token) = &self.token {
            request = request.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        let response = request
            .send()
            .await
            .map_err(|e| PublishError::Unreachable {
                addr: self.addr,
                reason: error_chain(&e),
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|e| PublishError::Unreachable {
                addr: self.addr,
                reason: error_chain(&e),
            })?;
        if !status.is_success() {
            let message = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or(text);
            return Err(PublishError::Refused {
                addr: self.addr,
                status: status.as_u16(),
                message,
            });
        }
        serde_json::from_str(&text).map_err(|e| PublishError::Refused {
            addr: self.addr,
            status: status.as_u16(),
            message: format!("unexpected answer ({e}): {text}"),
        })
    }
}

/// reqwest's top-level message is terse ("error sending request"); the cause says why.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        source = s.source();
    }
    parts.join(": ")
}
