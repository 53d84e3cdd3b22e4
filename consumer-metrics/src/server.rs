//! The HTTP `/metrics` listener.
//!
//! Why not the exporter's own `http-listener`: it serves `PrometheusHandle::render()` and
//! nothing else, so a scrape would neither refresh the bus stats (they would be as old as the
//! last timer tick) nor include the per-subscription families this crate writes itself (see
//! `render_subscribers`). This listener is the same hyper HTTP/1 server the exporter uses,
//! serving [`BusMetrics::render`], so the HTTP output and `render()` are the same text.

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::thread::JoinHandle;

use bus_core::EventBus;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{CONTENT_TYPE as CONTENT_TYPE_HEADER, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use crate::{BusMetrics, CONTENT_TYPE, MetricsConfig, MetricsError};

/// A running `/metrics` listener. Dropping it (or [`shutdown`](Self::shutdown)) stops it.
///
/// It serves `GET /metrics` with [`BusMetrics::render`], so every scrape sees fresh bus
/// stats; other paths get 404, other methods 405.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    metrics: BusMetrics,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// The address it listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The metrics it serves.
    pub fn metrics(&self) -> &BusMetrics {
        &self.metrics
    }

    /// Stops listening and waits for the listener thread to end.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

/// Attaches [`BusMetrics`] with the default [`MetricsConfig`] to `bus` and serves them at
/// `http://addr/metrics`: the one call a program embedding the bus needs to be scrapeable.
///
/// Works from sync and async code alike: the listener has its own thread and runtime. Use
/// port 0 for an ephemeral port and read it back with [`MetricsServer::local_addr`].
pub fn install_prometheus(bus: &EventBus, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
    BusMetrics::attach(bus, MetricsConfig::default())?.serve(addr)
}

impl BusMetrics {
    /// Serves these metrics at `http://addr/metrics` on a thread of its own.
    ///
    /// The address is bound before this returns, so a busy port is reported here.
    pub fn serve(&self, addr: SocketAddr) -> Result<MetricsServer, MetricsError> {
        let bind_error = |source| MetricsError::Bind { addr, source };
        let listener = StdListener::bind(addr).map_err(bind_error)?;
        listener.set_nonblocking(true).map_err(bind_error)?;
        let local = listener.local_addr().map_err(bind_error)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(MetricsError::Start)?;
        let (stop, stopped) = oneshot::channel();
        let metrics = self.clone();
        let thread = std::thread::Builder::new()
            .name("eventbus-metrics-http".into())
            .spawn(move || runtime.block_on(serve(listener, metrics, stopped)))
            .map_err(MetricsError::Start)?;
        tracing::info!(addr = %local, "serving eventbus metrics at http://{local}/metrics");
        Ok(MetricsServer {
            addr: local,
            metrics: self.clone(),
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

async fn serve(listener: StdListener, metrics: BusMetrics, mut stopped: oneshot::Receiver<()>) {
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(error) => {
            tracing::error!(%error, "the metrics listener could not start");
            return;
        }
    };
    loop {
        let stream = tokio::select! {
            _ = &mut stopped => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    // Out of file descriptors, say: retrying at once would spin, so pause as
                    // hyper's and axum's own accept loops do.
                    tracing::warn!(%error, "metrics listener: accept failed; retrying in 100 ms");
                    tokio::select! {
                        _ = &mut stopped => return,
                        _ = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                    }
                    continue;
                }
            },
        };
        let metrics = metrics.clone();
        let service = hyper::service::service_fn(move |request| {
            let metrics = metrics.clone();
            async move { Ok::<_, Infallible>(respond(&metrics, &request)) }
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                tracing::debug!(%error, "metrics listener: connection ended with an error");
            }
        });
    }
}

fn respond(metrics: &BusMetrics, request: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, body) = match (request.method(), request.uri().path()) {
        (&Method::GET | &Method::HEAD, "/metrics") => (StatusCode::OK, metrics.render()),
        (_, "/metrics") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET /metrics is served\n".to_owned(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "metrics are at /metrics\n".to_owned(),
        ),
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let content_type = if status == StatusCode::OK {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    response
        .headers_mut()
        .insert(CONTENT_TYPE_HEADER, HeaderValue::from_static(content_type));
    response
}
