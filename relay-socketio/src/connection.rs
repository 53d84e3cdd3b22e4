//! One rust_socketio client, from connect to disconnect.
//!
//! The client's callbacks only forward [`Signal`]s to the relay's task through a channel of
//! this connection's own, so a late callback of an old client can never reach a new session.
//! The crate's own reconnection is off: the relay builds a fresh client instead, and so never
//! has two live clients.

use std::time::Duration;

use futures_util::FutureExt;
use rust_socketio::asynchronous::{Client, ClientBuilder};
use rust_socketio::{Payload, TransportType};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio::time::{timeout, timeout_at};

use crate::RelayConfig;

/// What the client reports to the relay's task.
#[derive(Debug)]
pub(crate) enum Signal {
    /// The server acknowledged the namespace ("open").
    Open,
    /// The server disconnected the client ("close").
    Closed,
    /// A transport or protocol error; the connection is not trusted any more.
    Error(String),
    /// The checkpoint with this buffer sequence number was acknowledged.
    Ack(u64),
}

/// Why a connection could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectionError {
    /// The client could not connect (server down, refused, bad handshake).
    #[error("connect failed: {}", chain(.0))]
    Connect(#[from] rust_socketio::Error),
    /// Connecting, or the namespace acknowledgement, took longer than `connect_timeout`.
    #[error("no namespace acknowledgement within {0:?}")]
    OpenTimeout(Duration),
    /// The server answered the connection with an error or a disconnect.
    #[error("the server refused the namespace: {0}")]
    Refused(String),
    /// An emit failed.
    #[error("emit failed: {}", chain(.0))]
    Emit(rust_socketio::Error),
    /// An emit did not complete within `ack_timeout` (the socket is stuck).
    #[error("an emit took longer than {0:?}")]
    EmitTimeout(Duration),
}

/// An error with its causes: rust_socketio's own messages ("EngineIO Error") say little.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A connected client and the signals of its callbacks.
pub(crate) struct Connection {
    client: Client,
    signals: mpsc::UnboundedReceiver<Signal>,
    to_self: mpsc::UnboundedSender<Signal>,
    event_name: String,
    emit_timeout: Duration,
}

fn forward(
    tx: &mpsc::UnboundedSender<Signal>,
    make: fn(&Payload) -> Signal,
) -> impl FnMut(Payload, Client) -> futures_util::future::BoxFuture<'static, ()> + Send + Sync + 'static
{
    let tx = tx.clone();
    move |payload, _client| {
        // A closed channel means the session is over: nothing left to tell.
        let _ = tx.send(make(&payload));
        async {}.boxed()
    }
}

fn payload_text(payload: &Payload) -> String {
    match payload {
        Payload::Text(values) => values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" "),
        other => format!("{other:?}"),
    }
}

impl Connection {
    /// Connects and waits for the server to acknowledge the namespace, all within
    /// `connect_timeout`. Emitting before that loses events with some servers.
    pub(crate) async fn open(config: &RelayConfig) -> Result<Connection, ConnectionError> {
        let (tx, mut signals) = mpsc::unbounded_channel();
        // WebSocket from the handshake on: no long-polling over reqwest, which would send a
        // local dashboard's traffic through an HTTP_PROXY from the environment.
        let builder = ClientBuilder::new(config.url.as_str())
            .transport_type(TransportType::Websocket)
            .namespace(config.namespace.as_str())
            .reconnect(false)
            .reconnect_on_disconnect(false)
            .on("open", forward(&tx, |_| Signal::Open))
            .on("close", forward(&tx, |_| Signal::Closed))
            .on("error", forward(&tx, |p| Signal::Error(payload_text(p))));
        let limit = config.connect_timeout;
        // One deadline for both steps: the connection and the namespace acknowledgement.
        let deadline = tokio::time::Instant::now() + limit;
        let client = timeout_at(deadline, builder.connect())
            .await
            .map_err(|_| ConnectionError::OpenTimeout(limit))??;
        let connection = Connection {
            client,
            signals: mpsc::unbounded_channel().1,
            to_self: tx,
            event_name: config.event_name.clone(),
            emit_timeout: config.ack_timeout,
        };
        let opened = timeout_at(deadline, async {
            loop {
                match signals.recv().await {
                    Some(Signal::Open) => return Ok(()),
                    Some(Signal::Closed) => return Err("the server closed the connection".into()),
                    Some(Signal::Error(e)) => return Err(e),
                    Some(Signal::Ack(_)) => {}
                    None => return Err("the client went away".into()),
                }
            }
        })
        .await;
        let refused = match opened {
            Ok(Ok(())) => None,
            Ok(Err(reason)) => Some(ConnectionError::Refused(reason)),
            Err(_) => Some(ConnectionError::OpenTimeout(limit)),
        };
        if let Some(error) = refused {
            connection.close(limit).await;
            return Err(error);
        }
        Ok(Connection {
            signals,
            ..connection
        })
    }

    /// Emits one event without an acknowledgement.
    pub(crate) async fn emit(&self, payload: Value) -> Result<(), ConnectionError> {
        let emit = self
            .client
            .emit(self.event_name.as_str(), Payload::Text(vec![payload]));
        self.bounded(emit).await
    }

    /// Emits one event that asks for an acknowledgement; when it arrives, a
    /// [`Signal::Ack`] with `seq` follows. Only one may be in flight at a time: rust_socketio
    /// panics when several acks are outstanding.
    pub(crate) async fn emit_checkpoint(
        &self,
        payload: Value,
        seq: u64,
        ack_timeout: Duration,
    ) -> Result<(), ConnectionError> {
        let tx = self.to_self.clone();
        let on_ack = move |_: Payload, _: Client| {
            let _ = tx.send(Signal::Ack(seq));
            async {}.boxed()
        };
        let emit = self.client.emit_with_ack(
            self.event_name.as_str(),
            Payload::Text(vec![payload]),
            ack_timeout,
            on_ack,
        );
        self.bounded(emit).await
    }

    async fn bounded(
        &self,
        emit: impl Future<Output = Result<(), rust_socketio::Error>>,
    ) -> Result<(), ConnectionError> {
        match timeout(self.emit_timeout, emit).await {
            Ok(result) => result.map_err(ConnectionError::Emit),
            Err(_) => Err(ConnectionError::EmitTimeout(self.emit_timeout)),
        }
    }

    /// The next signal, waiting for one.
    pub(crate) async fn signal(&mut self) -> Option<Signal> {
        self.signals.recv().await
    }

    /// The next signal if one is there.
    pub(crate) fn try_signal(&mut self) -> Option<Signal> {
        self.signals.try_recv().ok()
    }

    /// Disconnects, giving up after `limit`: a dead server must not hold the relay.
    pub(crate) async fn close(self, limit: Duration) {
        match timeout(limit, self.client.disconnect()).await {
            Ok(Ok(())) => tracing::debug!("socket.io client disconnected"),
            Ok(Err(error)) => tracing::debug!(%error, "socket.io disconnect reported an error"),
            Err(_) => tracing::debug!("socket.io disconnect timed out"),
        }
    }
}
