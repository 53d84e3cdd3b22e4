//! Connection limits: the accept loop, per-connection timeouts and the connection cap.
//!
//! `axum::serve` has no timeouts and no cap, so a local client could hold sockets open until
//! the daemon ran out of file descriptors. Here every connection is served by hyper's HTTP/1
//! builder and watched:
//!
//! - **idle**: no request in progress and no byte received for `idle_timeout`: closed. This
//!   covers a connection that never sends anything and keep-alive time between requests.
//! - **header**: the first byte of a request arrived but the headers are not complete after
//!   `header_timeout`: closed.
//! - **body**: a request body that sends nothing for `body_timeout` is abandoned (tower-http's
//!   `RequestBodyTimeoutLayer`, in [`router`](crate::http::router)): 408, connection closed.
//! - **cap**: at `max_connections` open connections, a new one makes the daemon close the
//!   longest-idle connection (a warning is logged); when every connection is busy, accepting
//!   waits. The cap is kept below the file limit, whose soft value is raised to the hard one
//!   at startup, so that `/healthz` answers whatever idle sockets exist.
//!
//! hyper's own `header_read_timeout` is not used: its timer also runs while a keep-alive
//! connection waits for its next request, so it would cut the idle time down to the header
//! time.
//!
//! At shutdown the loop stops accepting, every connection is told to finish its request and
//! close (hyper's graceful shutdown: idle ones close at once), and [`serve`] returns when the
//! last one has.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::time::Instant;
use tower::ServiceExt;

/// File descriptors kept for everything but connections: the store, the spool, logs, the
/// relay's socket, the runtime's own.
const RESERVED_FDS: u64 = 64;

/// At most one "limit reached" warning per this long.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// The connection settings (from `CLAUDE_MPM_EVENTBUS_IDLE_TIMEOUT`, `_HEADER_TIMEOUT`,
/// `_BODY_TIMEOUT`, `_MAX_CONNECTIONS`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) idle: Duration,
    pub(crate) header: Duration,
    pub(crate) max_connections: usize,
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit and returns the cap to use: the
/// configured one, or the file limit less [`RESERVED_FDS`] when that is smaller (logged).
pub(crate) fn connection_cap(configured: usize) -> usize {
    let Some(files) = raise_file_limit() else {
        return configured;
    };
    let room = files.saturating_sub(RESERVED_FDS).max(1);
    if (configured as u64) > room {
        tracing::warn!(
            "CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS={configured} is above what the file limit ({files}) leaves room for: keeping at most {room} connections"
        );
        room as usize
    } else {
        configured
    }
}

/// The soft file limit after raising it as far as the hard limit allows.
#[cfg(unix)]
fn raise_file_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft >= hard {
        return Some(soft);
    }
    match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
        Ok(()) => Some(hard),
        Err(e) => {
            // macOS refuses values above OPEN_MAX even under an unlimited hard limit.
            tracing::debug!("cannot raise the file limit from {soft} to {hard}: {e}");
            Some(soft)
        }
    }
}

#[cfg(not(unix))]
fn raise_file_limit() -> Option<u64> {
    None
}

/// What the watchdog of one connection knows about it.
#[derive(Debug)]
struct Conn {
    /// Requests in progress (until their response body is sent or dropped).
    busy: AtomicUsize,
    /// When the first byte of the pending request's head arrived (ms since `epoch`; 0: none).
    head_started: AtomicU64,
    /// When a byte last arrived or a request ended (ms since `epoch`).
    last: AtomicU64,
    /// Told to close: the cap needs its place.
    evict: Notify,
}

/// Every open connection, for the cap and for shutdown.
#[derive(Debug)]
struct Registry {
    epoch: Instant,
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    /// Signalled when a connection ends.
    freed: Notify,
}

impl Registry {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn at(&self, ms: u64) -> Instant {
        self.epoch + Duration::from_millis(ms.saturating_sub(1))
    }

    fn len(&self) -> usize {
        self.conns.lock().expect("connection registry").len()
    }

    /// Takes the longest-idle connection out of the registry and tells it to close.
    fn evict_idlest(&self) -> bool {
        let mut conns = self.conns.lock().expect("connection registry");
        let victim = conns
            .iter()
            .filter(|(_, c)| c.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.last.load(Ordering::Relaxed))
            .map(|(id, _)| *id);
        match victim.and_then(|id| conns.remove(&id)) {
            Some(conn) => {
                conn.evict.notify_one();
                true
            }
            None => false,
        }
    }
}

impl Conn {
    fn on_bytes(&self, now: u64) {
        self.last.store(now, Ordering::Relaxed);
        if self.busy.load(Ordering::Acquire) == 0 {
            let _ = self
                .head_started
                .compare_exchange(0, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// When this connection expires if nothing happens, and why; `None` while it is busy.
    fn deadline(&self, limits: &Limits, reg: &Registry) -> Option<(Instant, &'static str)> {
        if self.busy.load(Ordering::Acquire) > 0 {
            return None;
        }
        match self.head_started.load(Ordering::Acquire) {
            0 => Some((
                reg.at(self.last.load(Ordering::Relaxed)) + limits.idle,
                "idle",
            )),
            started => Some((reg.at(started) + limits.header, "header")),
        }
    }
}

/// Marks a request in progress until dropped (with the response body).
struct Busy {
    conn: Arc<Conn>,
    reg: Arc<Registry>,
}

impl Busy {
    fn new(conn: Arc<Conn>, reg: Arc<Registry>) -> Self {
        conn.busy.fetch_add(1, Ordering::AcqRel);
        conn.head_started.store(0, Ordering::Release);
        Busy { conn, reg }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.conn.last.store(self.reg.now(), Ordering::Relaxed);
        self.conn.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The socket, noting when bytes arrive.
struct Watched {
    stream: TcpStream,
    conn: Arc<Conn>,
    reg: Arc<Registry>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let result = Pin::new(&mut self.stream).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            let now = self.reg.now();
            self.conn.on_bytes(now);
        }
        result
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// Serves `router` on `listener` within `limits` until `shutdown` completes, then lets open
/// connections finish their requests; returns when the last one has closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let reg = Arc::new(Registry {
        epoch: Instant::now(),
        next_id: AtomicU64::new(0),
        conns: Mutex::new(HashMap::new()),
        freed: Notify::new(),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut last_warning: Option<Instant> = None;
    let mut warn = |message: String| {
        if last_warning.is_none_or(|t| t.elapsed() >= WARN_EVERY) {
            last_warning = Some(Instant::now());
            tracing::warn!("{message}");
        }
    };
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => {
                // Without it, a reply or SSE event written right after another small one
                // waits for the client's delayed ACK (up to 40 ms on Linux): Nagle's rule.
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!("cannot set TCP_NODELAY on a connection: {e}");
                }
                stream
            }
            Err(e) => {
                // Out of file descriptors (EMFILE) or a connection reset before it was taken:
                // wait a little instead of spinning.
                warn(format!("cannot accept a connection: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if reg.len() >= limits.max_connections {
            if reg.evict_idlest() {
                warn(format!(
                    "connection limit reached ({} open, CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS): closing the longest-idle connections to take new ones",
                    limits.max_connections
                ));
            } else {
                warn(format!(
                    "connection limit reached ({} open, CLAUDE_MPM_EVENTBUS_MAX_CONNECTIONS), every one busy: new connections wait",
                    limits.max_connections
                ));
                while reg.len() >= limits.max_connections && !reg.evict_idlest() {
                    let freed = reg.freed.notified();
                    tokio::select! {
                        () = &mut shutdown => {
                            let _ = stop_tx.send(true);
                            return drain(&reg).await;
                        }
                        () = freed => {}
                        // A busy connection may turn idle without ending.
                        () = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            }
        }
        spawn_connection(stream, router.clone(), limits, reg.clone(), stop_rx.clone());
    }
    let _ = stop_tx.send(true);
    drain(&reg).await;
}

/// Waits until every connection has closed.
async fn drain(reg: &Registry) {
    loop {
        let freed = reg.freed.notified();
        if reg.len() == 0 {
            return;
        }
        freed.await;
    }
}

fn spawn_connection(
    stream: TcpStream,
    router: Router,
    limits: Limits,
    reg: Arc<Registry>,
    mut stop: watch::Receiver<bool>,
) {
    let id = reg.next_id.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(Conn {
        busy: AtomicUsize::new(0),
        head_started: AtomicU64::new(0),
        last: AtomicU64::new(reg.now()),
        evict: Notify::new(),
    });
    reg.conns
        .lock()
        .expect("connection registry")
        .insert(id, conn.clone());
    tokio::spawn(async move {
        let io = TokioIo::new(Watched {
            stream,
            conn: conn.clone(),
            reg: reg.clone(),
        });
        let service = {
            let conn = conn.clone();
            let reg = reg.clone();
            hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                let busy = Busy::new(conn.clone(), reg.clone());
                let router = router.clone();
                async move {
                    let response = router.oneshot(request.map(Body::new)).await;
                    // The request stays in progress until its body is sent: SSE streams
                    // are never idle.
                    response.map(|r| {
                        r.map(move |body| {
                            Body::new(body.map_frame(move |frame| {
                                let _ = &busy;
                                frame
                            }))
                        })
                    })
                }
            })
        };
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(None)
            .serve_connection(io, service);
        let mut connection = Box::pin(connection);
        let mut stopping = false;
        loop {
            let deadline = conn.deadline(&limits, &reg);
            let check_at = deadline.map_or_else(
                || Instant::now() + limits.idle.min(limits.header),
                |(at, _)| at,
            );
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("connection ended: {e}");
                    }
                    break;
                }
                () = tokio::time::sleep_until(check_at) => {
                    if let Some((at, why)) = conn.deadline(&limits, &reg)
                        && at <= Instant::now()
                    {
                        tracing::debug!("closing a connection: {why} timeout");
                        break;
                    }
                }
                () = conn.evict.notified() => {
                    tracing::debug!("closing the longest-idle connection: connection limit reached");
                    break;
                }
                changed = stop.changed(), if !stopping => {
                    stopping = true;
                    if changed.is_ok() {
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        drop(connection);
        reg.conns.lock().expect("connection registry").remove(&id);
        reg.freed.notify_waiters();
    });
}
